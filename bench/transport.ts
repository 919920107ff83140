// bench/transport.ts HOST PORT USER KEY KNOWN_HOSTS [COUNT]: what one remote command costs, per channel
// (a new ssh2 channel, a login shell and a sudo per command: pgtls before the long-lived shells) and
// streamed (src/remote/stream-shell.ts), as the login user, as root through sudo and as postgres.
// Run: node dist/bench/transport.js 10.231.0.11 22 admin .lab/id_ed25519 .lab/known_hosts 20
import { HostShell } from '../src/remote/host-shell.js';
import type { Transport } from '../src/lib/transport.js';
import { sh } from '../src/lib/sh.js';
import { SshTransport } from '../src/remote/ssh.js';

const [host = '', port = '22', user = 'root', key, knownHosts, countArg = '20'] = process.argv.slice(2);
const count = Number(countArg);

async function timeIt(label: string, n: number, f: () => Promise<unknown>): Promise<void> {
  const times: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await f();
    times.push(Number(process.hrtime.bigint() - t) / 1e6);
  }
  const first = times[0]!;
  const rest = times.slice(1).sort((a, b) => a - b);
  const median = rest[Math.floor(rest.length / 2)] ?? first;
  console.log(`${label.padEnd(44)} first ${first.toFixed(1).padStart(7)} ms   median of the rest ${median.toFixed(1).padStart(6)} ms   total ${times.reduce((a, b) => a + b, 0).toFixed(0).padStart(6)} ms`);
}

const t0 = Date.now();
const ssh = await SshTransport.connect({ name: host, host, port: Number(port), user, ...(key ? { privateKeyFile: key } : {}), knownHostsFile: knownHosts ?? null, connectTimeoutMs: 30_000 });
console.log(`ssh connect + auth: ${Date.now() - t0} ms; ${count} commands each`);
// the old way: a transport without runIn, so HostShell wraps every command and opens a channel for it
const perChannel: Transport = { run: (c, i, t) => ssh.run(c, i, t), close: async () => undefined };
const cases: [string, boolean, string | undefined][] = [
  [`as ${user} (login user)`, false, undefined],
  ['as root (become: sudo -n / runuser)', true, undefined],
  ['as postgres (sudo -u / runuser -u)', true, 'postgres'],
];
for (const [label, become, as] of cases) {
  for (const [mode, transport] of [['per channel', perChannel], ['streamed', ssh]] as const) {
    const shell = new HostShell(transport, user, become);
    await timeIt(`${label}, ${mode}`, count, () => shell.exec(sh`true`, as ? { user: as } : {}));
  }
}
const big = Buffer.alloc(4 << 20, 7);
const shell = new HostShell(ssh, user, true);
await timeIt('4 MiB stdin through wc -c, streamed', 3, async () => {
  const r = await shell.exec(sh`wc -c`, { stdin: big });
  if (r.stdout.toString().trim() !== String(big.length)) throw new Error(`wc -c: ${r.stdout.toString()}`);
});
await ssh.close();
