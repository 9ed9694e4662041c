/**
 * The server's version, one place for `--version`, `/health`, `/` and the OpenAPI document.
 *
 * @module
 */

export const VERSION = "0.1.0";
