/*
 * Directives of real nginx modules that redis2d does not implement
 * (docs/behaviour.md §3). They stay `unknown directive "NAME"`, nginx's
 * words for a module that is not loaded; this table only adds the line
 * after it that tells an operator whose directive it is. It is consulted
 * for names no module of redis2d knows, so a directive that becomes real
 * simply stops reaching it: delete its name here when it does (proxy_pass,
 * fastcgi_pass and the directives that came with them are not listed:
 * redis2d's main line implements them).
 */

/** module label → directive names (one line per module: easy to trim) */
const TABLE: Array<[string, string]> = [
  // nginx's own modules
  ["nginx's ngx_http_proxy_module", 'proxy_cache proxy_cache_path proxy_cache_key proxy_cache_valid proxy_cache_bypass proxy_no_cache'],
  ["nginx's ngx_http_fastcgi_module", 'fastcgi_cache fastcgi_cache_path fastcgi_cache_key fastcgi_cache_valid'],
  ["nginx's ngx_http_uwsgi_module", 'uwsgi_pass uwsgi_param uwsgi_read_timeout uwsgi_buffers'],
  ["nginx's ngx_http_scgi_module", 'scgi_pass scgi_param'],
  ["nginx's ngx_http_grpc_module", 'grpc_pass grpc_set_header grpc_read_timeout'],
  ["nginx's ngx_http_memcached_module", 'memcached_pass memcached_read_timeout memcached_connect_timeout memcached_send_timeout memcached_buffer_size memcached_next_upstream memcached_gzip_flag'],
  ["nginx's ngx_http_gunzip_module", 'gunzip'],
  ["nginx's ngx_http_auth_request_module", 'auth_request auth_request_set'],
  ["nginx's ngx_http_geo_module", 'geo'],
  ["nginx's ngx_http_geoip_module", 'geoip_country geoip_city geoip_org geoip_proxy'],
  ["nginx's ngx_http_split_clients_module", 'split_clients'],
  ["nginx's ngx_http_secure_link_module", 'secure_link secure_link_md5 secure_link_secret'],
  ["nginx's ngx_http_addition_module", 'add_before_body add_after_body addition_types'],
  ["nginx's ngx_http_ssi_module", 'ssi ssi_types ssi_silent_errors'],
  ["nginx's ngx_http_userid_module", 'userid userid_name userid_domain userid_path userid_expires'],
  ["nginx's ngx_http_mirror_module", 'mirror mirror_request_body'],
  ["nginx's ngx_http_dav_module", 'dav_methods dav_access create_full_put_path'],
  ["nginx's ngx_http_flv_module", 'flv'],
  ["nginx's ngx_http_mp4_module", 'mp4 mp4_buffer_size mp4_max_buffer_size'],
  ["nginx's ngx_http_image_filter_module", 'image_filter image_filter_buffer image_filter_jpeg_quality'],
  ["nginx's ngx_http_xslt_module", 'xslt_stylesheet xml_entities'],
  ["nginx's ngx_http_perl_module", 'perl perl_modules perl_require perl_set'],
  ["nginx's ngx_http_slice_module", 'slice'],
  ["nginx's ngx_http_browser_module", 'ancient_browser modern_browser'],
  ["nginx's ngx_http_random_index_module", 'random_index'],
  ["nginx's ngx_http_core_module", 'disable_symlinks client_body_in_file_only'],
  ["nginx's ngx_stream_core_module", 'stream'],
  ["nginx's ngx_mail_core_module", 'mail'],
  ["nginx's ngx_http_js_module (njs)", 'js_import js_content js_set js_path'],
  // third-party modules
  ['the third-party lua-nginx-module (ngx_http_lua_module)', 'balancer_by_lua_block balancer_by_lua_file ssl_certificate_by_lua_block ssl_certificate_by_lua_file'],
  ['the third-party headers-more-nginx-module', 'more_set_headers more_clear_headers more_set_input_headers more_clear_input_headers'],
  ['the third-party rds-json-nginx-module', 'rds_json rds_json_ret rds_json_format'],
  ['the third-party drizzle-nginx-module', 'drizzle_pass drizzle_query drizzle_server'],
  ['the third-party ngx_postgres module', 'postgres_pass postgres_query postgres_server postgres_output'],
  ['the third-party array-var-nginx-module', 'array_split array_join array_map array_map_op'],
  ['the third-party encrypted-session-nginx-module', 'encrypted_session_key encrypted_session_iv encrypted_session_expires set_encrypt_session set_decrypt_session'],
  ['the third-party form-input-nginx-module', 'set_form_input set_form_input_multi'],
  ['the third-party ngx_brotli module', 'brotli brotli_static brotli_types brotli_comp_level'],
  ['the third-party nginx-module-vts', 'vhost_traffic_status vhost_traffic_status_zone vhost_traffic_status_display'],
  ['the third-party ModSecurity-nginx connector', 'modsecurity modsecurity_rules_file'],
  ['the third-party nchan module', 'nchan_publisher nchan_subscriber nchan_channel_id'],
];

const byName = new Map<string, string>();
for (const [mod, names] of TABLE) for (const n of names.split(' ')) byName.set(n, mod);

/**
 * The line after `unknown directive "NAME"` when NAME belongs to a module
 * redis2d does not implement; undefined for a name nobody knows.
 */
export function unimplementedHint(name: string): string | undefined {
  const mod = byName.get(name);
  return mod === undefined ? undefined : `"${name}" is a directive of ${mod}, which redis2d does not implement`;
}
