// What the server presents, asked with the host's own openssl (servedCertOnHost): s_client is told
// not to load the system trust store (the certificate is judged on the controller), and an OpenSSL
// that lacks one of those flags is asked again without it. A stand-in openssl first in PATH records
// every call; a real s_client against a real TLS server proves the flags are accepted.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { TLSSocket } from 'node:tls';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { servedCertOnHost } from '../../src/tls/served-cert.js';
import { localContext } from './local-host.js';

const work = mkdtempSync(join(tmpdir(), 'pgtls-served-cert-'));
const FAKE_PEM = '-----BEGIN CERTIFICATE-----\nMIIBfake\n-----END CERTIFICATE-----';

async function withOpenssl<T>(script: string, f: () => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(work, 'bin-'));
  writeFileSync(join(dir, 'openssl'), `#!/bin/sh\nprintf '%s\\n' "$*" >> ${dir}/calls\n${script}\n`, { mode: 0o755 });
  const PATH = process.env['PATH'];
  process.env['PATH'] = `${dir}:${PATH}`;
  try {
    return await f();
  } finally {
    process.env['PATH'] = PATH;
  }
}
const calls = (): string[] => {
  const dir = process.env['PATH']!.split(':')[0]!;
  return readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
};

test('OpenSSL 3: one s_client, without the system trust store', async () => {
  const { ctx } = localContext();
  let seen: string[] = [];
  const got = await withOpenssl(`echo "${FAKE_PEM}"`, async () => {
    const r = await servedCertOnHost(ctx, '192.0.2.1', 5432);
    seen = calls();
    return r;
  });
  assert.equal(seen, ['s_client -starttls postgres -connect 192.0.2.1:5432 -no-CAfile -no-CApath -no-CAstore']);
  assert.is(got?.pem, `${FAKE_PEM}\n`);
});

test('an OpenSSL without -no-CAstore (1.1) is asked again without it; one without either, plainly', async () => {
  const { ctx } = localContext();
  for (const [rejects, expected] of [
    ['*-no-CAstore*', ['-no-CAfile -no-CApath -no-CAstore', '-no-CAfile -no-CApath']],
    ['*-no-CA*', ['-no-CAfile -no-CApath -no-CAstore', '-no-CAfile -no-CApath', '']],
  ] as const) {
    let seen: string[] = [];
    const got = await withOpenssl(`case "$*" in ${rejects}) echo "s_client: Unknown option: -no-CAstore" >&2; exit 1 ;; esac\necho "${FAKE_PEM}"`, async () => {
      const r = await servedCertOnHost(ctx, '192.0.2.1', 5432);
      seen = calls();
      return r;
    });
    assert.equal(seen, expected.map((f) => `s_client -starttls postgres -connect 192.0.2.1:5432${f ? ` ${f}` : ''}`.trimEnd()));
    assert.is(got?.pem, `${FAKE_PEM}\n`, rejects);
  }
});

// A PostgreSQL-like server (answers the SSLRequest with 'S', then TLS) with a throwaway certificate.
test('the real openssl accepts the flags and reads the certificate a server presents', async () => {
  const key = join(work, 'k.pem');
  const crt = join(work, 'c.pem');
  execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', crt, '-subj', '/CN=served-cert-test', '-days', '1'], { stdio: 'pipe' });
  const server: Server = createServer((sock) => {
    sock.once('data', () => {
      sock.write('S');
      const tls = new TLSSocket(sock, { isServer: true, key: readFileSync(key), cert: readFileSync(crt) });
      tls.on('error', () => undefined);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  try {
    const { ctx } = localContext();
    const got = await servedCertOnHost(ctx, '127.0.0.1', port);
    assert.is(got?.pem?.trim(), readFileSync(crt, 'utf8').trim());
  } finally {
    server.close();
  }
});

test.after(() => rmSync(work, { recursive: true, force: true }));
test.run();
