/**
 * Where the `postern` command's options come from besides its arguments: the environment (`POSTERN_SMTP_PORT=2525`
 * for `--smtp-port 2525`) and a configuration file (`--config FILE` or `POSTERN_CONFIG`, one `name value` per line).
 * Both keep secrets (passwords in `--user`, `--http-auth`, `--passphrase`) off the command line, which every local
 * user can read in `ps`; the environment is what container platforms configure.
 *
 * Precedence: the command line, then the environment, then the file. An option that may be repeated (`--user`) takes
 * all its values from the first of those that gives any; they are not merged.
 */
import { UsageError, readFile } from './cli-usage.js';

/** The option table handed to `node:util`'s parseArgs (the subset of its fields these sources need). */
export type OptionTypes = Readonly<Record<string, { readonly type: 'string' | 'boolean'; readonly multiple?: boolean }>>;
/** What parseArgs resolves per option. */
export type OptionValues = Record<string, string | boolean | string[] | undefined>;
/** Where each option taken from the environment or the file was set (`POSTERN_SMTP_PORT`, `--config FILE line 3`). */
export type OptionOrigins = Map<string, string>;

/** Options that only make sense as arguments. */
const ARGUMENTS_ONLY = new Set(['help', 'version', 'config', 'check']);

/** The environment variable of an option: `POSTERN_` and its name in upper case, `-` as `_` (`POSTERN_SMTP_PORT`). */
export function envName(option: string): string {
  return `POSTERN_${option.toUpperCase().replace(/-/g, '_')}`;
}

/** `true`/`yes`/`on`/`1` or `false`/`no`/`off`/`0` (any case); undefined for anything else. */
function truth(text: string): boolean | undefined {
  const t = text.trim().toLowerCase();
  if (['true', 'yes', 'on', '1'].includes(t)) return true;
  if (['false', 'no', 'off', '0'].includes(t)) return false;
  return undefined;
}

/**
 * The options set in `env`. An empty variable counts as unset; a repeatable option takes one value per line
 * (`POSTERN_USER=$'alice:…\nbob:…'`); a boolean takes true/yes/on/1 or false/no/off/0.
 * @throws UsageError for a boolean with another value.
 */
export function optionsFromEnv(options: OptionTypes, env: NodeJS.ProcessEnv): OptionValues {
  const values: OptionValues = {};
  for (const [name, spec] of Object.entries(options)) {
    if (ARGUMENTS_ONLY.has(name)) continue;
    const raw = env[envName(name)];
    if (raw === undefined || raw.trim() === '') continue;
    if (spec.type === 'boolean') {
      const on = truth(raw);
      if (on === undefined) throw new UsageError(`${envName(name)}: expected true or false, got "${raw}"`);
      if (on) values[name] = true;
    } else if (spec.multiple) {
      values[name] = raw.split(/\r?\n/).map((v) => v.trim()).filter((v) => v !== '');
    } else {
      values[name] = raw.trim();
    }
  }
  return values;
}

/**
 * The options set in a configuration file's `text`: one option per line, its name without `--`, then its value after
 * spaces or `=` (`smtp-port 2525`, `user = alice:secret@example.com`); the rest of the line is the value, spaces
 * inside it included, with no quoting. A boolean alone on its line is on (`auth-disabled`), or takes true/false.
 * A repeatable option is repeated line by line. `#` starts a comment line; blank lines are skipped.
 * @throws UsageError naming the file and line: an unknown option, a missing value, a second value of an option that
 *   takes one, or a boolean with another value.
 */
export function optionsFromFile(options: OptionTypes, text: string, file: string, origins?: OptionOrigins): OptionValues {
  const values: OptionValues = {};
  const lines = text.replace(/^\uFEFF/, '').split(/\r?\n/); // a byte-order mark from an editor is not part of the first name
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '' || line.startsWith('#')) continue;
    const where = `--config ${file}: line ${i + 1}`;
    const match = /^(?:--)?([A-Za-z0-9-]+)(?:\s*=\s*|\s+|$)(.*)$/.exec(line);
    const name = match?.[1]?.toLowerCase();
    const spec = name === undefined ? undefined : options[name];
    if (match === null || name === undefined || spec === undefined || ARGUMENTS_ONLY.has(name)) {
      throw new UsageError(`${where}: unknown option "${name ?? line}"`);
    }
    const value = match[2]!.trim();
    if (!origins?.has(name)) origins?.set(name, `--config ${file} line ${i + 1}`);
    if (spec.type === 'boolean') {
      const on = value === '' ? true : truth(value);
      if (on === undefined) throw new UsageError(`${where}: ${name} takes true or false, got "${value}"`);
      if (on) values[name] = true;
      else delete values[name];
    } else if (value === '') {
      throw new UsageError(`${where}: ${name} needs a value`);
    } else if (spec.multiple) {
      values[name] = [...((values[name] as string[] | undefined) ?? []), value];
    } else if (values[name] !== undefined) {
      throw new UsageError(`${where}: ${name} is given twice (it takes one value)`);
    } else {
      values[name] = value;
    }
  }
  return values;
}

/**
 * `values` (parsed from the arguments) completed from the environment and then from the configuration file named by
 * `--config` or `POSTERN_CONFIG`: each option the arguments do not set is taken from the first of those that does.
 * @throws UsageError from either source, or for an unreadable file.
 */
export function withOptionSources(values: OptionValues, options: OptionTypes, env: NodeJS.ProcessEnv, origins?: OptionOrigins): OptionValues {
  const configFile = (values.config as string | undefined) ?? (env.POSTERN_CONFIG?.trim() || undefined);
  const fileOrigins: OptionOrigins = new Map();
  const sources: Array<[OptionValues, (name: string) => string]> = [[optionsFromEnv(options, env), envName]];
  if (configFile !== undefined) {
    const fromFile = optionsFromFile(options, readFile(configFile, '--config'), configFile, fileOrigins);
    sources.push([fromFile, (name) => fileOrigins.get(name) ?? `--config ${configFile}`]);
  }
  const merged: OptionValues = { ...values };
  for (const [source, origin] of sources) {
    for (const [name, value] of Object.entries(source)) {
      if (merged[name] !== undefined) continue;
      merged[name] = value;
      origins?.set(name, origin(name));
    }
  }
  return merged;
}
