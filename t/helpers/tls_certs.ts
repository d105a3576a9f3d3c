import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/*
 * Certificates made by the test with the openssl CLI: a CA, a server
 * certificate for 127.0.0.1 / localhost signed by it, a client certificate
 * signed by it, and a second, unrelated CA (the "wrong CA").
 */

export interface Certs {
  dir: string;
  ca: string;
  otherCa: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
  /** a server certificate and the intermediate CA that issued it, in one file */
  chainedCert: string;
  chainedKey: string;
  cleanup(): void;
}

function ossl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

export function makeCerts(): Certs {
  const dir = mkdtempSync(join(tmpdir(), 'redis2d-tls-'));
  const f = (n: string): string => join(dir, n);
  const ca = (name: string): void => {
    ossl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${name}`]);
  };
  ca('ca');
  ca('other-ca');
  const leaf = (name: string, ext: string): void => {
    writeFileSync(f(`${name}.ext`), ext);
    ossl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    ossl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.crt', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.crt`, '-days', '2', '-extfile', `${name}.ext`]);
  };
  // clientAuth too: cluster nodes present it to each other on the TLS cluster bus
  leaf('server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n');
  leaf('client', 'extendedKeyUsage=clientAuth\n');
  leaf('inter', 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n');
  // a server certificate issued by the intermediate, sent with it (chain file: leaf then intermediate)
  writeFileSync(f('chained.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  ossl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'chained.key', '-out', 'chained.csr', '-subj', '/CN=chained']);
  ossl(dir, ['x509', '-req', '-in', 'chained.csr', '-CA', 'inter.crt', '-CAkey', 'inter.key', '-CAcreateserial', '-out', 'chained-leaf.crt', '-days', '2', '-extfile', 'chained.ext']);
  writeFileSync(f('chained.crt'), Buffer.concat([readFileSync(f('chained-leaf.crt')), readFileSync(f('inter.crt'))]));
  return {
    dir,
    ca: f('ca.crt'),
    otherCa: f('other-ca.crt'),
    serverCert: f('server.crt'),
    serverKey: f('server.key'),
    clientCert: f('client.crt'),
    clientKey: f('client.key'),
    chainedCert: f('chained.crt'),
    chainedKey: f('chained.key'),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}
