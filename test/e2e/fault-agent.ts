// A small helper the fault suite runs INSIDE a lab host (nsenter into its network and mount
// namespaces, see faults-lib.ts startAgent), to inject a fault at the exact moment it matters,
// which a test polling from outside could not hit reliably. Node builtins only. Talks line by
// line: commands on stdin, events on stdout ("ready", "fired …", "cut …", "bound", "released").
//
//   proxy LISTEN_IP LISTEN_PORT TARGET_IP TARGET_PORT
//       a TCP relay (sshd moved behind it). "rate N": client→server at N bytes/s (0: unlimited);
//       "cut K": forward K more client→server bytes, then destroy every connection (a cable
//       pulled while the controller is sending).
//   on-replace PATH ACTION ARG [TARGET]
//       when PATH is replaced (a new inode renamed over it), once: ACTION chmod MODE | append TEXT
//       on TARGET (default PATH).
//   squat PORT LOGFILE REGEXP
//       take PORT as soon as it is free (the server stopped), hold it until LOGFILE matches REGEXP
//       (the server failed to bind) or 10 s passed, then free it.
import { appendFileSync, chmodSync, existsSync, readFileSync, statSync, watch } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { createInterface } from 'node:readline';

const say = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

interface Relay {
  client: net.Socket;
  server: net.Socket;
  queue: Buffer[];
  /** client→server bytes still allowed before the cut (null: not armed). */
  budget: number | null;
}

function proxy(listenIp: string, listenPort: number, targetIp: string, targetPort: number): void {
  const live = new Set<Relay>();
  let rate = 0; // client→server bytes per second, 0 = unlimited
  const cut = (c: Relay, forwarded: number): void => {
    live.delete(c);
    c.client.destroy();
    c.server.destroy();
    say(`cut ${forwarded}`);
  };
  // Forwards queued client bytes: all of them, or rate/100 every 10 ms (so that a command's stdin
  // takes long enough on the wire for the test to cut it half-way), stopping at an armed budget.
  const pump = (c: Relay, allowance: number): void => {
    let sent = 0;
    while (c.queue.length && allowance > 0) {
      let chunk = c.queue.shift()!;
      let n = Math.min(chunk.length, allowance, c.budget ?? Infinity);
      if (n < chunk.length) {
        c.queue.unshift(chunk.subarray(n));
        chunk = chunk.subarray(0, n);
      }
      if (n > 0) c.server.write(chunk);
      sent += n;
      allowance -= n;
      if (c.budget !== null) {
        c.budget -= n;
        if (c.budget <= 0) return cut(c, sent);
      }
      if (n === 0) break;
    }
  };
  setInterval(() => {
    for (const c of live) pump(c, rate ? Math.ceil(rate / 100) : Infinity);
  }, 10).unref();
  net
    .createServer((client) => {
      const server = net.connect(targetPort, targetIp);
      const c: Relay = { client, server, queue: [], budget: null };
      live.add(c);
      client.on('data', (d: Buffer) => {
        c.queue.push(d);
        if (!rate) pump(c, Infinity);
      });
      server.on('data', (d: Buffer) => client.write(d));
      const end = (): void => {
        live.delete(c);
        client.destroy();
        server.destroy();
      };
      client.on('close', end).on('error', end);
      server.on('close', end).on('error', end);
    })
    .listen(listenPort, listenIp, () => say('ready'));
  createInterface({ input: process.stdin }).on('line', (line) => {
    const [cmd, arg] = line.trim().split(' ');
    const k = Number(arg);
    if (cmd === 'rate') {
      rate = k;
      say(`rate ${k}`);
    } else if (cmd === 'cut') {
      if (live.size === 0) say('cut none');
      for (const c of [...live]) {
        c.budget = k;
        if (k === 0) cut(c, 0);
      }
    }
  });
}

function onReplace(file: string, action: string, arg: string, target = file): void {
  const inode = (): number | null => (existsSync(file) ? statSync(file).ino : null);
  const first = inode();
  let done = false;
  const check = (): void => {
    if (done) return;
    const now = inode();
    if (now === null || now === first) return;
    done = true;
    if (action === 'chmod') chmodSync(target, parseInt(arg, 8));
    else if (action === 'append') appendFileSync(target, `${arg}\n`);
    say(`fired ${action} ${target}`);
    setTimeout(() => process.exit(0), 50);
  };
  // inotify on the directory (the file is renamed over, not modified), plus a slow poll as a safety net.
  watch(path.dirname(file), () => check());
  setInterval(check, 20);
  say('ready');
}

function squat(port: number, logFile: string, pattern: RegExp): void {
  const logSize = (): number => (existsSync(logFile) ? statSync(logFile).size : 0);
  const start = logSize();
  const tryBind = (): void => {
    const srv = net.createServer((s) => s.destroy());
    srv.once('error', () => setTimeout(tryBind, 2));
    srv.listen(port, '0.0.0.0', () => {
      say('bound');
      const t0 = Date.now();
      const poll = setInterval(() => {
        const text = existsSync(logFile) ? readFileSync(logFile).subarray(start).toString('utf8') : '';
        if (pattern.test(text) || Date.now() - t0 > 10_000) {
          clearInterval(poll);
          setTimeout(() => srv.close(() => { say('released'); process.exit(0); }), 300);
        }
      }, 25);
    });
  };
  tryBind();
  say('ready');
}

// The test ends an agent by closing its stdin (it runs under `nsenter --pid`, a fork the test cannot signal directly).
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();

const [mode, ...args] = process.argv.slice(2);
if (mode === 'proxy') proxy(args[0]!, Number(args[1]), args[2]!, Number(args[3]));
else if (mode === 'on-replace') onReplace(args[0]!, args[1]!, args[2]!, args[3]);
else if (mode === 'squat') squat(Number(args[0]), args[1]!, new RegExp(args[2]!));
else {
  process.stderr.write(`fault-agent: unknown mode ${String(mode)}\n`);
  process.exit(2);
}
