/**
 * Fault injection ("chaos") for every text session ({@link FaultSession}, the base of `TextSession`): the injector the
 * `SessionHandler` sets, the stages asked before the greeting and before commands, and what each action does (a
 * delay, throttled output, a cut TLS handshake, a disconnect, a reply in the protocol's framing).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { THROTTLE_TICK_MS } from './limits.js';
import type { FaultAction, FaultInjector, FaultStage } from './faults.js';
import { LoginSession } from './login-session.js';

/**
 * The base of `TextSession`: asks the fault injector at each stage ({@link injectFault}, {@link beforeCommand}) and
 * applies its answer. With no injector set (the default) every ask returns `false` at once. The session members the
 * actions use that `TextSession` defines are declared here.
 */
export abstract class FaultSession extends LoginSession {
  /** Fault injection ("chaos"), set by the SessionHandler before `TextSession.run`; none by default. */
  faults?: { readonly injector: FaultInjector; readonly protocol: string };
  /** Output limit set by a `throttle` fault, in octets per second; 0 = unlimited. */
  protected throttleBps = 0;
  /** Set by a `tls-abort` fault: the next STARTTLS/STLS handshake is cut off. */
  protected abortNextHandshake = false;

  /** Writes in slices of a tenth of the allowed rate, one slice per 100 ms (a `throttle` fault: a slow link). */
  protected async writeThrottled(data: Buffer): Promise<void> {
    const slice = Math.max(1, Math.floor(this.throttleBps / 10));
    for (let i = 0; i < data.length && !this.connection.isClosed; i += slice) {
      if (i > 0) await sleep(THROTTLE_TICK_MS, undefined, { signal: this.gone }).catch(() => undefined);
      if (!this.connection.write(data.subarray(i, i + slice))) await this.connection.drained();
    }
  }

  /**
   * Asks the fault injector about `stage` and applies its answer. Resolves true when the stage was consumed (a
   * reply was sent instead, or the connection is gone): the caller then does nothing more for it. No rule fires
   * (the common case): `false` at once, with no promise (issue 15: asked before every MAIL and RCPT).
   */
  injectFault(stage: FaultStage, subjects: readonly string[] = []): boolean | Promise<boolean> {
    if (!this.faults) return false;
    const action = this.faults.injector.decide(this.faults.protocol, stage, subjects);
    if (!action) return false;
    this.log.info('fault injected', { stage, action: action.kind });
    return this.applyFault(stage, action);
  }

  private async applyFault(stage: FaultStage, action: FaultAction): Promise<boolean> {
    switch (action.kind) {
      case 'delay':
        await this.flush();
        await sleep(action.ms, undefined, { signal: this.gone }).catch(() => undefined);
        return this.isEnding;
      case 'throttle':
        this.throttleBps = action.bytesPerSecond;
        return false;
      case 'tls-abort':
        this.abortNextHandshake = true;
        return false;
      case 'disconnect':
        this.destroyWithoutGoodbye();
        return true;
      case 'reply':
        await this.sendFaultReply(action.text, stage);
        if (stage === 'connect' || stage === 'greeting') await this.end('refused');
        return true;
    }
  }

  /**
   * Sends a fault's reply line in the protocol's framing (IMAP adds the command's tag) and applies the protocol's
   * rule for it (SMTP closes after `421`). The default sends the line as it is.
   */
  protected async sendFaultReply(text: string, _stage: FaultStage): Promise<void> {
    this.send(text + '\r\n');
  }

  /** The fault stage of a command about to run (and what an address pattern matches), or undefined. */
  protected faultStage(_verb: string, _args: string): { stage: FaultStage; subjects?: string[] } | undefined {
    return undefined;
  }

  /** DispatchTarget: runs the fault stage of a command whose guards passed; true when the command must not run. */
  beforeCommand(verb: string, args: string): boolean | Promise<boolean> {
    if (!this.faults) return false;
    const s = this.faultStage(verb, args);
    return s ? this.injectFault(s.stage, s.subjects) : false;
  }

  /** `TextSession.destroyWithoutGoodbye`: a `disconnect` fault drops the queued replies and the connection without a word. */
  protected abstract destroyWithoutGoodbye(): void;
}
