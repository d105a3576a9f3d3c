import { VAR_NOCACHEABLE, VAR_PREFIX, type Variables } from './variables.js';

/*
 * The variables nginx's core, upstream and log modules define (SPEC §4).
 * Names are registered at config time so `unknown "x" variable` is judged
 * as nginx judges it; getters are attached by the request side.
 */

const EXACT = [
  'args', 'query_string', 'is_args', 'uri', 'document_uri', 'request_uri', 'request_method', 'request',
  'request_body', 'request_length', 'content_length', 'content_type', 'remote_addr', 'remote_port',
  'remote_user', 'binary_remote_addr', 'server_addr', 'server_port', 'server_name', 'server_protocol',
  'host', 'hostname', 'scheme', 'https', 'status', 'body_bytes_sent', 'bytes_sent', 'request_time',
  'msec', 'time_local', 'time_iso8601', 'pid', 'nginx_version', 'connection', 'connection_requests',
  'document_root', 'realpath_root', 'request_filename', 'request_id', 'request_completion',
  'upstream_addr', 'upstream_status', 'upstream_response_time', 'upstream_connect_time',
  'upstream_header_time', 'upstream_response_length', 'upstream_bytes_received', 'upstream_bytes_sent',
  'http_user_agent', 'http_referer', 'http_via', 'http_x_forwarded_for', 'http_cookie', 'http_host',
  'sent_http_content_type', 'sent_http_content_length', 'sent_http_location', 'sent_http_last_modified',
  'sent_http_connection', 'sent_http_keep_alive', 'sent_http_transfer_encoding', 'sent_http_cache_control',
  'sent_http_link', 'limit_rate', 'tcpinfo_rtt', 'tcpinfo_rttvar', 'tcpinfo_snd_cwnd', 'tcpinfo_rcv_space',
  'proxy_protocol_addr', 'proxy_protocol_port', 'proxy_protocol_server_addr', 'proxy_protocol_server_port',
  'msie_refresh', 'request_body_file', 'connection_time',
];

const PREFIXES = ['http_', 'sent_http_', 'sent_trailer_', 'cookie_', 'arg_', 'upstream_http_', 'upstream_trailer_', 'upstream_cookie_'];

export function defineCoreVariables(vars: Variables): void {
  for (const name of EXACT) vars.add(undefined, name, VAR_NOCACHEABLE);
  for (const p of PREFIXES) vars.add(undefined, p, VAR_PREFIX | VAR_NOCACHEABLE);
}
