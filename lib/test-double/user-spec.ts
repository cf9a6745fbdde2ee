/** A user to create: login, password and the addresses delivered to it. */
export interface UserSpec {
  readonly username: string;
  readonly password: string;
  readonly addresses?: string[];
}

/**
 * Parses `login:password@domain` (the CLI's `--user` and the test double's shorthand): the user logs in as
 * `login` or as `login@domain` and receives mail for `login@domain`. Without `@domain` the user has no address
 * besides its login. The password may contain `:`; the last `@` starts the domain.
 * @throws Error for a spec without `login:password`.
 */
export function parseUserSpec(spec: string): UserSpec {
  const colon = spec.indexOf(':');
  if (colon <= 0) throw new Error(`bad user "${spec}": expected login:password@domain`);
  const login = spec.slice(0, colon);
  const rest = spec.slice(colon + 1);
  const at = rest.lastIndexOf('@');
  const password = at === -1 ? rest : rest.slice(0, at);
  const domain = at === -1 ? '' : rest.slice(at + 1);
  if (at !== -1 && !/^[A-Za-z0-9.-]+$/.test(domain)) throw new Error(`bad user "${spec}": invalid domain "${domain}"`);
  return { username: login, password, addresses: domain ? [`${login}@${domain}`.toLowerCase()] : [] };
}
