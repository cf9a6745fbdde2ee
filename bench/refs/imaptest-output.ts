/** Reading imaptest's stress output (`Totals:` counters and `Error:` lines); kept apart so a spec can cover it. */

/** One kind of `Error:` line imaptest printed, how often, and the first example. */
export interface ImaptestErrorKind {
  readonly kind: string;
  readonly count: number;
  readonly example: string;
}

/**
 * Parses the `Totals:` block (a row of counter names, then a row of numbers) and the `Error:` lines, grouped by
 * kind (the text before the first colon, e.g. "Keyword used without being in FLAGS") with one example each.
 */
export function parseImaptest(output: string): { totals: Record<string, number>; errors: ImaptestErrorKind[] } {
  const totals: Record<string, number> = {};
  const lines = output.split('\n');
  const at = lines.findIndex((l) => l.trim() === 'Totals:');
  if (at !== -1) {
    const names = lines[at + 1].trim().split(/\s+/);
    const row = lines.slice(at + 2).find((l) => /^\s*\d+(\s+\d+)+\s*$/.test(l));
    const values = row?.trim().split(/\s+/).map(Number) ?? [];
    names.forEach((n, i) => {
      if (values[i] !== undefined) totals[n] = values[i];
    });
  }
  const kinds = new Map<string, { count: number; example: string }>();
  for (const l of lines) {
    const i = l.indexOf('Error: ');
    if (i === -1) continue;
    // "Error: alice[12]: Keyword used without being in FLAGS: $Label2: * 1 FETCH …": drop the client prefix.
    const text = l.slice(i + 7).replace(/^[^\s[]+\[\d+\]: /, '').replace(/\s+/g, ' ').trim();
    const kind = text.split(':')[0];
    const k = kinds.get(kind) ?? { count: 0, example: text.slice(0, 160) };
    k.count++;
    kinds.set(kind, k);
  }
  return { totals, errors: [...kinds].map(([kind, k]) => ({ kind, ...k })) };
}
