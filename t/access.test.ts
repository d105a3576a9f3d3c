import t from 'tap';
import { DECLINED, OK } from '../lib/http/request.js';
import { accessModule } from '../lib/modules/access/module.js';
import { inet6Addr, inetAddr, ptocidr } from '../lib/modules/access/cidr.js';
import { load, loadError, location, request } from './helpers/rewrite.js';

const { servers, cycle } = load(`events {}
http {
    deny 192.0.2.1;
    server {
        listen 127.0.0.1:18093;
        location /a {
            allow 10.1.2.3/8;
            deny 10.0.0.0/8;
            allow 127.0.0.1;
            deny all;
        }
        location /b {
            deny 2001:db8::/32;
            allow ::1;
            deny all;
        }
        location /c {
            allow unix:;
            deny all;
        }
        location /inherit { }
        location /v6only { allow 2001:db8::1; }
    }
}
`);
const srv = servers[0]!;
const check = (loc: string, peer: string | undefined) => {
  const r = request(srv, location(srv, loc), '/x');
  // undefined: a unix-domain connection (`unix:`, as the connection names it); the handler reads the
  // connection's address, which realip may have replaced
  (r as unknown as { conn: { remoteAddr: string } }).conn = { remoteAddr: peer ?? 'unix:' };
  return { rc: accessModule.phases!.access!(r), logs: r.logs };
};

t.test('first match wins, per family', async (t) => {
  t.equal(check('/a', '10.9.9.9').rc, OK, 'low bits cleared: 10.0.0.0/8 allowed first');
  t.equal(check('/a', '127.0.0.1').rc, OK);
  const d = check('/a', '127.0.0.2');
  t.equal(d.rc, 403);
  t.same(d.logs, ['[error] access forbidden by rule']);
  t.equal(check('/a', '::ffff:127.0.0.1').rc, OK, 'IPv4-mapped IPv6 is judged by the IPv4 rules');
  t.equal(check('/a', '::ffff:127.0.0.3').rc, 403);
  t.equal(check('/a', '::1').rc, 403, 'deny all also covers IPv6');
  t.equal(check('/b', '::1').rc, OK);
  t.equal(check('/b', '2001:db8:1::5').rc, 403);
  t.equal(check('/b', '2001:db9::5').rc, 403);
  t.equal(check('/b', '10.0.0.1').rc, 403, 'all reaches IPv4 too');
  t.equal(check('/c', undefined).rc, OK, 'unix-domain peers');
  t.equal(check('/a', undefined).rc, 403);
});

t.test('inheritance: a level without rules takes the parent list', async (t) => {
  t.equal(check('/inherit', '192.0.2.1').rc, 403);
  t.equal(check('/inherit', '192.0.2.2').rc, DECLINED);
  t.equal(check('/v6only', '192.0.2.1').rc, DECLINED, 'own rules replace the inherited ones');
  t.equal(check('/v6only', '2001:db8::1').rc, OK);
  t.equal(check('/v6only', '::ffff:192.0.2.1').rc, DECLINED, 'mapped, but no IPv4 rules: IPv6 rules see the mapped address');
});

t.test('warnings and errors', async (t) => {
  t.same(
    cycle.warnings.map((w) => w.text.replace(/ in .*/, '')),
    ['low address bits of 10.1.2.3/8 are meaningless'],
  );
  const L = (v: string) => `events {}\nhttp {\n server {\n  location / {\n   allow ${v};\n  }\n }\n}\n`;
  t.equal(loadError(L('1.2.3')), 'invalid parameter "1.2.3"');
  t.equal(loadError(L('1.2.3.4/33')), 'invalid parameter "1.2.3.4/33"');
  t.equal(loadError(L('::1/129')), 'invalid parameter "::1/129"');
  t.equal(loadError(L('256.1.1.1')), 'invalid parameter "256.1.1.1"');
  t.equal(loadError(L('255.255.255.255')), 'invalid parameter "255.255.255.255"');
  t.equal(loadError(L('1.2.3.4/')), 'invalid parameter "1.2.3.4/"');
  t.equal(loadError(L('ALL')), 'invalid parameter "ALL"');
  t.equal(loadError(L('unix:/x')), 'invalid parameter "unix:/x"');
  t.equal(loadError(L('1.2.3.4')), 'ok');
});

t.test('address parsers follow ngx_inet.c', async (t) => {
  t.same(Array.from(inetAddr('1.2.3.4')!), [1, 2, 3, 4]);
  t.same(Array.from(inetAddr('1..3.4')!), [1, 0, 3, 4], 'nginx accepts an empty octet');
  t.equal(inetAddr('1.2.3.4.5'), undefined);
  t.same(Array.from(inet6Addr('::1')!), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
  t.same(Array.from(inet6Addr('2001:db8::ff00:42:8329')!), [0x20, 1, 0xd, 0xb8, 0, 0, 0, 0, 0, 0, 0xff, 0, 0, 0x42, 0x83, 0x29]);
  t.same(Array.from(inet6Addr('::ffff:1.2.3.4')!), [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4]);
  t.equal(inet6Addr('1:2:3:4:5:6:7:8:9'), undefined);
  t.equal(inet6Addr('1::2::3'), undefined);
  t.equal(ptocidr('10.0.0.1/8')!.rc, 'done');
  t.equal(ptocidr('10.0.0.0/8')!.rc, 'ok');
  t.same(Array.from(ptocidr('0.0.0.0/0')!.cidr.mask), [0, 0, 0, 0]);
});
