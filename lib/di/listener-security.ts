import type { ListenerSecurityOverride } from '../core/listener-securities.js';
import type { PosternConfig } from './config.js';

/**
 * Collects each listener's own `security` from the config: every protocol section (`smtp`, `pop3`, `imap`, and any
 * other) whose listener entries (`config.imap.imaps`) carry a `security` field. Keyed by listener name.
 */
export function listenerSecurityOverrides(config: PosternConfig): Record<string, ListenerSecurityOverride> {
  const out: Record<string, ListenerSecurityOverride> = {};
  for (const section of Object.values(config) as unknown[]) {
    if (!isRecord(section)) continue;
    for (const [name, listener] of Object.entries(section)) {
      if (isRecord(listener) && listener.security !== undefined && listener.security !== null) out[name] = listener.security as ListenerSecurityOverride;
    }
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
