/**
 * The attackers of the fairness scenario, in their own process so that their timers do not slow the well-behaved
 * client being measured. `node dist/spec/load/attacker.js '{"ports":{…},"perListener":N}'` opens, from 127.0.0.1,
 * N slowloris connections (one byte every 100 ms, never a line end) on each plaintext listener, N silent ones (no TLS
 * handshake) on each implicit-TLS listener and N that read the greeting and say nothing on each plaintext listener;
 * each comes back as soon as the server closes it. Prints `attacking` once started and, on SIGTERM, `opened <n>`.
 */
import net from 'node:net';

const { ports, perListener } = JSON.parse(process.argv[2] ?? '{}') as { ports: Record<string, number>; perListener: number };
let opened = 0;
let stopping = false;
const live = new Set<net.Socket>();

function attack(kind: 'slowloris' | 'silent' | 'greeted', port: number): void {
  if (stopping) return;
  opened++;
  const s = net.connect({ port, host: '127.0.0.1', localAddress: '127.0.0.1' });
  live.add(s);
  let drip: NodeJS.Timeout | undefined;
  s.on('error', () => undefined);
  s.on('data', () => undefined);
  if (kind === 'slowloris') s.once('connect', () => (drip = setInterval(() => s.write('A'), 100)));
  s.once('close', () => {
    clearInterval(drip);
    live.delete(s);
    setTimeout(() => attack(kind, port), 5);
  });
}

for (let i = 0; i < perListener; i++) {
  for (const p of ['smtp', 'pop3', 'imap']) attack('slowloris', ports[p]);
  for (const p of ['smtps', 'pop3s', 'imaps']) attack('silent', ports[p]);
  for (const p of ['smtp', 'pop3', 'imap']) attack('greeted', ports[p]);
}
process.stdout.write('attacking\n');
process.once('SIGTERM', () => {
  stopping = true;
  for (const s of live) s.destroy();
  process.stdout.write(`opened ${opened}\n`, () => process.exit(0));
});
