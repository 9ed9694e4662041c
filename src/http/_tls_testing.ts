/**
 * Test certificates made with `openssl` (Debian's `openssl` package, a test package of
 * scripts/setup.sh): a CA, a server certificate for `localhost` and 127.0.0.1 signed by it, a
 * client certificate signed by it, and a self-signed client certificate nobody trusts.
 *
 * @module
 */

/** A PEM certificate and key, and the files they are in. */
export interface Pem {
  cert: string;
  key: string;
  certFile: string;
  keyFile: string;
}

/** What {@linkcode makePki} made, in `dir`. */
export interface TestPki {
  dir: string;
  ca: Pem;
  server: Pem;
  /** Signed by `ca`, CN=scraper, SAN DNS:scraper.test. */
  client: Pem;
  /** Self-signed, CN=stranger. */
  stranger: Pem;
  /** A new server certificate and key for `localhost`, signed by `ca` (server2.crt, .key). */
  reissueServer(): Promise<Pem>;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

async function pem(dir: string, name: string): Promise<Pem> {
  const certFile = `${dir}/${name}.crt`, keyFile = `${dir}/${name}.key`;
  return {
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
    certFile,
    keyFile,
  };
}

const EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];

/** A certificate for `cn` signed by the CA in `dir`, with the extensions of `ext`. */
async function issue(dir: string, name: string, cn: string, ext: string): Promise<Pem> {
  await openssl([
    "req",
    ...EC,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
    "-subj",
    `/CN=${cn}`,
  ], dir);
  await openssl([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.crt",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-out",
    `${name}.crt`,
    "-days",
    "2",
    "-extfile",
    ext,
  ], dir);
  return pem(dir, name);
}

/** A self-signed certificate for `cn` (a CA, or a stranger no CA signed). */
async function selfSigned(dir: string, name: string, cn: string): Promise<void> {
  await openssl(
    ["req", "-x509", ...EC, "-keyout", `${name}.key`, "-out", `${name}.crt`, "-days", "2"]
      .concat(["-subj", `/CN=${cn}`]),
    dir,
  );
}

/** Makes a fresh CA and certificates in a new temporary directory (remove it when done). */
export async function makePki(): Promise<TestPki> {
  const dir = await Deno.makeTempDir({ prefix: "ebpf-server-pki-" });
  await selfSigned(dir, "ca", "ebpf-server test CA");
  await Deno.writeTextFile(`${dir}/server.ext`, "subjectAltName=DNS:localhost,IP:127.0.0.1\n");
  await Deno.writeTextFile(
    `${dir}/client.ext`,
    "subjectAltName=DNS:scraper.test\nextendedKeyUsage=clientAuth\n",
  );
  await issue(dir, "server", "localhost", "server.ext");
  await issue(dir, "client", "scraper", "client.ext");
  await selfSigned(dir, "stranger", "stranger");
  return {
    dir,
    ca: await pem(dir, "ca"),
    reissueServer: () => issue(dir, "server2", "localhost", "server.ext"),
    server: await pem(dir, "server"),
    client: await pem(dir, "client"),
    stranger: await pem(dir, "stranger"),
  };
}
