import { HTTP_LOC_CONF, NOARGS } from '../../conf/command.js';
import { httpCoreModule } from '../../http/core/module.js';
import type { HttpRequest } from '../../http/http_request.js';
import { defineHttpModule, locConf } from '../../http/module.js';
import { DONE, type Request } from '../../http/request.js';

/*
 * ngx_http_empty_gif_module: `empty_gif;` answers GET and HEAD with a 1x1
 * transparent GIF (image/gif, 43 bytes, Last-Modified of nginx's fixed
 * 23349600 s, i.e. Sun, 28 Sep 1970 06:00:00 GMT), anything else with 405,
 * through ngx_http_send_response (the request body discarded first).
 */

/**
 * The image, written out from the GIF89a format: header, logical screen
 * 1x1 with a 2-colour global table (black, white), a graphic control
 * extension making colour 1 transparent, a 1x1 image descriptor, LZW data
 * (minimum code size 2: clear, pixel 1, end) and the trailer.
 */
const GIF = Buffer.from(
  '474946383961' + // "GIF89a"
    '0100' + '0100' + '80' + '01' + '00' + // 1x1, global table of 2, background 1, no aspect
    '000000' + 'ffffff' + // the table
    '21f904' + '01' + '0000' + '01' + '00' + // graphic control: transparent index 1
    '2c' + '0000' + '0000' + '0100' + '0100' + '00' + // image descriptor
    '02' + '02' + '4c01' + '00' + // LZW code size 2, one 2-byte block
    '3b', // trailer
  'hex',
);

const LAST_MODIFIED = 23349600;

function emptyGifHandler(req: Request): number {
  const r = req as HttpRequest;
  if (r.method !== 'GET' && r.method !== 'HEAD') return 405;
  r.contentType = 'image/gif';
  r.lastModifiedTime = LAST_MODIFIED;
  r.sendResponse(200, GIF.toString('latin1'));
  return DONE;
}

export const emptyGifModule = defineHttpModule({
  name: 'empty_gif',
  commands: [
    {
      name: 'empty_gif',
      ctx: HTTP_LOC_CONF,
      args: NOARGS,
      set(cf) {
        locConf(cf, httpCoreModule).handler = emptyGifHandler;
      },
    },
  ],
});
