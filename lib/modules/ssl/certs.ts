import { readFileSync } from 'node:fs';
import { X509Certificate, createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { ConfError } from '../../conf/errors.js';
import type { Conf } from '../../conf/parser.js';
import { errnoSuffix } from '../../core/errno.js';
import { opensslErrorText } from '../../http/tls.js';

/*
 * Reading certificates, keys and the other PEM files of ngx_http_ssl_module
 * as nginx's ngx_event_openssl.c does, failing with its words: the
 * function that failed and the OpenSSL error queue after `(SSL: `. The
 * queue texts are OpenSSL 3.0's (Debian's nginx and node 20 both link
 * 3.0.x); node gives the first error of a queue, nginx prints them all,
 * so the common failures are spelled here as nginx prints them.
 */

/** OpenSSL's system error entry for errno, then BIO's own line (BIO_new_file) */
export function fopenQueue(path: string, err: NodeJS.ErrnoException): string {
  const known: Record<string, [number, string]> = {
    ENOENT: [2, 'No such file or directory'],
    EACCES: [13, 'Permission denied'],
    EISDIR: [21, 'Is a directory'],
    ENOTDIR: [20, 'Not a directory'],
    ELOOP: [40, 'Too many levels of symbolic links'],
    ENAMETOOLONG: [36, 'File name too long'],
  };
  const [n, text] = known[err.code ?? ''] ?? [Math.abs(err.errno ?? 0), err.code ?? 'Unknown error'];
  const sys = `error:${(0x80000000 + n).toString(16).toUpperCase()}:system library::${text}:calling fopen(${path}, r)`;
  // BIO_R_NO_SUCH_FILE for ENOENT, ERR_R_SYS_LIB otherwise
  const bio = err.code === 'ENOENT' ? 'error:10000080:BIO routines::no such file' : 'error:10080002:BIO routines::system lib';
  return `${sys} ${bio}`;
}

/** a file nginx opens with BIO_new_file: its bytes, or the queue of the failure */
export interface BioFailure {
  queue: string;
}

export function readBio(path: string): Buffer | BioFailure {
  try {
    return readFileSync(path);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    // fopen() of a directory succeeds, reading it fails: PEM's "no start line"
    if (err.code === 'EISDIR') return Buffer.alloc(0);
    return { queue: fopenQueue(path, err) };
  }
}

const PEM_BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END \1-----/g;

/** the PEM blocks of a file, in order: [label, whole block text] */
function pemBlocks(text: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  PEM_BLOCK.lastIndex = 0;
  for (let m = PEM_BLOCK.exec(text); m; m = PEM_BLOCK.exec(text)) out.push([m[1]!, m[0]]);
  return out;
}

const CERT_LABELS = new Set(['CERTIFICATE', 'TRUSTED CERTIFICATE', 'X509 CERTIFICATE']);

export interface LoadedCert {
  /** the file's PEM text (certificate then its chain), as node takes it */
  pem: string;
  leaf: X509Certificate;
  chain: X509Certificate[];
}

/** ngx_ssl_load_certificate: the first certificate, then the chain; `cannot load certificate` on failure */
export function loadCertificate(path: string): LoadedCert {
  const fail = (what: string, queue: string): never => {
    throw new ConfError(`cannot load certificate "${path}": ${what} failed (SSL: ${queue})`);
  };
  const bytes = readBio(path);
  if (!Buffer.isBuffer(bytes)) return fail('BIO_new_file()', (bytes as BioFailure).queue);
  const blocks = pemBlocks(bytes.toString('latin1')).filter(([label]) => CERT_LABELS.has(label));
  if (blocks.length === 0) return fail('PEM_read_bio_X509_AUX()', 'error:0480006C:PEM routines::no start line:Expecting: TRUSTED CERTIFICATE');
  const certs: X509Certificate[] = [];
  for (let i = 0; i < blocks.length; i++) {
    try {
      certs.push(new X509Certificate(blocks[i]![1]));
    } catch (e) {
      fail(i === 0 ? 'PEM_read_bio_X509_AUX()' : 'PEM_read_bio_X509()', opensslErrorText(e as Error) ?? 'error:0488000D:PEM routines::ASN1 lib');
    }
  }
  return { pem: blocks.map((b) => b[1]).join('\n') + '\n', leaf: certs[0]!, chain: certs.slice(1) };
}

export interface LoadedKey {
  pem: string;
  passphrase: string | undefined;
  key: KeyObject;
}

const NO_KEY = 'error:1E08010C:DECODER routines::unsupported:No supported data to decode. Input type: PEM';

/** ngx_ssl_load_certificate_key: `cannot load certificate key` on failure; passwords tried in order */
export function loadCertificateKey(path: string, passwords: string[] | undefined): LoadedKey {
  const fail = (what: string, queue: string): never => {
    throw new ConfError(`cannot load certificate key "${path}": ${what} failed (SSL: ${queue})`);
  };
  if (path.startsWith('engine:')) engineKey(path);
  const bytes = readBio(path);
  if (!Buffer.isBuffer(bytes)) return fail('BIO_new_file()', (bytes as BioFailure).queue);
  const text = bytes.toString('latin1');
  const block = pemBlocks(text).find(([label]) => label.includes('PRIVATE KEY'));
  if (block === undefined) return fail('PEM_read_bio_PrivateKey()', NO_KEY);
  const tries = passwords && passwords.length ? passwords : [undefined];
  let last: Error | undefined;
  for (const pass of tries) {
    try {
      const key = createPrivateKey({ key: block[1], format: 'pem', passphrase: pass });
      return { pem: block[1], passphrase: pass, key };
    } catch (e) {
      last = e as Error;
    }
  }
  return fail('PEM_read_bio_PrivateKey()', (last && opensslErrorText(last)) ?? NO_KEY);
}

/**
 * `engine:NAME:KEY`: nginx asks OpenSSL for the engine, which node's
 * OpenSSL does not load; the failure is Debian's OpenSSL's for an engine
 * it cannot find (its engines directory in the message).
 */
function engineKey(path: string): never {
  const rest = path.slice(7);
  const last = rest.indexOf(':');
  if (last === -1) throw new ConfError(`cannot load certificate key "${path}": invalid syntax`);
  const id = rest.slice(0, last);
  const so = `/usr/lib/x86_64-linux-gnu/engines-3/${id}.so`;
  throw new ConfError(
    `cannot load certificate key "engine:${id}": ENGINE_by_id() failed (SSL: ` +
      `error:12800067:DSO support routines::could not load the shared library:filename(${so}): ${so}: cannot open shared object file: No such file or directory ` +
      'error:12800067:DSO support routines::could not load the shared library error:13000084:engine routines::dso not found ' +
      `error:13000074:engine routines::no such engine:id=${id})`,
  );
}

/** SSL_CTX_use_PrivateKey's check: a key of the certificate's type must be the certificate's */
export function keyMatches(cert: X509Certificate, key: KeyObject): boolean {
  const pub = cert.publicKey;
  if (pub.asymmetricKeyType !== key.asymmetricKeyType) return true; // another slot: OpenSSL does not compare
  const a = createPublicKey(key).export({ type: 'spki', format: 'der' });
  const b = pub.export({ type: 'spki', format: 'der' });
  return a.equals(b);
}

/** ngx_ssl_read_password_file of the directive's file argument (ssl_ and proxy_ssl_password_file) */
export function readPasswordFile(cf: Conf): string[] {
  const path = cf.cycle.confFullName(cf.args[1]!);
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw cf.error(`open() "${path}" failed ${errnoSuffix(e)}`);
  }
  return parsePasswords(data);
}

/** ngx_ssl_read_password_file: one password per line (CR LF or LF), empty lines skipped */
export function parsePasswords(data: Buffer): string[] {
  const out: string[] = [];
  for (let line of data.toString('latin1').split('\n')) {
    if (line.endsWith('\r')) line = line.slice(0, -1);
    if (line.length) out.push(line);
  }
  if (out.length === 0) out.push('');
  return out;
}

/** PEM CA certificates of a file (ssl_client_certificate, ssl_trusted_certificate) */
export function loadCaFile(path: string): string {
  const bytes = readBio(path);
  if (!Buffer.isBuffer(bytes)) {
    throw new ConfError(`SSL_CTX_load_verify_locations("${path}") failed (SSL: ${(bytes as BioFailure).queue} error:05880002:x509 certificate routines::system lib)`);
  }
  const blocks = pemBlocks(bytes.toString('latin1')).filter(([label]) => CERT_LABELS.has(label));
  return blocks.map((b) => b[1]).join('\n') + '\n';
}

/** ngx_ssl_dhparam: `PEM_read_bio_DHparams(...)` */
export function loadDhparam(path: string): string {
  const bytes = readBio(path);
  if (!Buffer.isBuffer(bytes)) throw new ConfError(`BIO_new_file("${path}") failed (SSL: ${(bytes as BioFailure).queue})`);
  const block = pemBlocks(bytes.toString('latin1')).find(([label]) => label === 'DH PARAMETERS');
  if (block === undefined) {
    throw new ConfError(`PEM_read_bio_DHparams("${path}") failed (SSL: error:0480006C:PEM routines::no start line:Expecting: DH PARAMETERS)`);
  }
  return block[1];
}
