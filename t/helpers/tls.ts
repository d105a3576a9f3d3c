import { execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type ConnectionOptions } from 'node:tls';

/*
 * TLS test helpers: certificates made by the openssl CLI in a temp dir
 * (server RSA and ECDSA pairs per name, a CA with a client certificate it
 * signed, a self-signed client), and a TLS client that sends raw bytes and
 * reports what the handshake settled with the server's bytes.
 */

export interface Certs {
  dir: string;
}

function ossl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
}

/** NAME.crt / NAME.key for each server name (RSA), ec-NAME.crt/.key (ECDSA P-256); ca.pem, client.*, rogue.* */
export function makeCerts(names: string[], ecNames: string[] = []): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'tls-certs-'));
  for (const n of names) {
    ossl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${n}.key`, '-out', `${n}.crt`, '-days', '3', '-subj', `/CN=${n}`]);
  }
  for (const n of ecNames) {
    ossl(dir, ['ecparam', '-genkey', '-name', 'prime256v1', '-noout', '-out', `ec-${n}.key`]);
    ossl(dir, ['req', '-x509', '-key', `ec-${n}.key`, '-out', `ec-${n}.crt`, '-days', '3', '-subj', `/CN=ec-${n}`]);
  }
  ossl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '3', '-subj', '/CN=Test CA']);
  ossl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'client.key', '-out', 'client.csr', '-subj', '/C=DE/O=Org, Inc/CN=client']);
  ossl(dir, ['x509', '-req', '-in', 'client.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-set_serial', '0x1234ABCD', '-out', 'client.crt', '-days', '3']);
  ossl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'rogue.key', '-out', 'rogue.crt', '-days', '3', '-subj', '/CN=rogue']);
  writeFileSync(join(dir, 'garbage.pem'), 'not a certificate\n');
  return { dir };
}

export interface TlsResult {
  /** the handshake's error code (ERR_SSL_...) or '' */
  error: string;
  protocol: string;
  cipher: string;
  /** the CN of the certificate the server presented */
  peer: string;
  alpn: string;
  /** everything the server sent, latin1 */
  out: string;
  /** the session to resume with (last ticket or the TLS 1.2 session) */
  session: Buffer | undefined;
}

/** connect, handshake, send `data` (pieces `gapMs` apart), collect until close or `idleMs` of silence */
export function tlsRaw(port: number, data: string | string[], opts: ConnectionOptions = {}, idleMs = 300, gapMs = 30): Promise<TlsResult> {
  return new Promise((resolve) => {
    const res: TlsResult = { error: '', protocol: '', cipher: '', peer: '', alpn: '', out: '', session: undefined };
    const c = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, ...opts });
    let timer: NodeJS.Timeout | undefined;
    const arm = (): void => {
      if (timer) clearTimeout(timer);
      timer = setTimeout(() => c.destroy(), idleMs);
    };
    c.on('session', (s) => (res.session = s));
    c.on('data', (d: Buffer) => {
      res.out += d.toString('latin1');
      arm();
    });
    c.on('error', (e: NodeJS.ErrnoException) => {
      if (!res.error) res.error = e.code ?? e.message;
    });
    c.on('close', () => {
      if (timer) clearTimeout(timer);
      resolve(res);
    });
    c.once('secureConnect', async () => {
      res.protocol = c.getProtocol() ?? '';
      res.cipher = c.getCipher()?.name ?? '';
      res.peer = String(c.getPeerCertificate()?.subject?.CN ?? '');
      res.alpn = typeof c.alpnProtocol === 'string' ? c.alpnProtocol : '';
      const parts = Array.isArray(data) ? data : [data];
      for (let i = 0; i < parts.length; i++) {
        if (i) await new Promise((r) => setTimeout(r, gapMs));
        c.write(Buffer.from(parts[i]!, 'latin1'));
      }
      arm();
    });
  });
}
