/**
 * Build outputs the server needs at run time: the shim and the BPF objects.
 *
 * They are read through `import.meta.url`, which points into the checkout when running from
 * source and into the executable's embedded file system after `deno compile --include build/`,
 * so both ways run this same code.
 *
 * @module
 */

const BUILD_DIR = new URL("../build/", import.meta.url);

/** The URL of a build output, e.g. `assetUrl("bpf/connection.bpf.o")`. */
export function assetUrl(path: string): URL {
  return new URL(path, BUILD_DIR);
}

/**
 * Reads a build output. Throws an error that names `make prepare` when it is missing.
 */
export function readAsset(path: string): Uint8Array<ArrayBuffer> {
  const url = assetUrl(path);
  try {
    return Deno.readFileSync(url);
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) {
      throw new Error(
        `missing build output ${url.pathname}: run 'make prepare' first (it builds the shim and BPF objects)`,
      );
    }
    throw err;
  }
}
