/**
 * What this process has open and how it fsyncs, read from Linux's `/proc/self/fd` and from the real `FileHandle`
 * prototype: for specs that check a store leaves no descriptor behind and fsyncs what it must.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';

/** The targets of this process's open descriptors (a descriptor closed while they are read is left out). */
export function openTargets(): string[] {
  return readdirSync('/proc/self/fd').flatMap((fd) => {
    try {
      return [readlinkSync(`/proc/self/fd/${fd}`)];
    } catch {
      return [];
    }
  });
}

/** Targets of open descriptors that start with `prefix` (a directory's path, with or without its trailing `/`). */
export function openUnder(prefix: string): string[] {
  return openTargets().filter((target) => target.startsWith(prefix));
}

/** How many descriptors are open on exactly `path`. */
export function openOn(path: string): number {
  return openTargets().filter((target) => target === path).length;
}

/** The path a FileHandle is open on. */
export function targetOf(handle: FileHandle): string {
  return readlinkSync(`/proc/self/fd/${handle.fd}`);
}

/**
 * The prototype node:fs/promises gives every FileHandle (it is not exported): read off a handle opened on this module
 * and closed again, for pass-through spies that call the real method and record what it was called on.
 */
export async function fileHandlePrototype<P extends object = FileHandle>(): Promise<P> {
  const probe = await open(new URL(import.meta.url), 'r');
  await probe.close();
  return Object.getPrototypeOf(probe) as P;
}
