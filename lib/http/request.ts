/**
 * The per-request state every phase reads and writes. The request-serving
 * issue fills this out; config-time code only needs the type's name.
 */
export interface Request {
  /** evaluated variables by index; undefined = not yet evaluated */
  vars: (string | undefined)[];
}
