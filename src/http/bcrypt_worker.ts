/**
 * A worker that checks bcrypt passwords off the main thread: one check of a cost-10 hash takes
 * about 100 ms of CPU in JavaScript, which on the main thread would stall every other request.
 * Messages in: `{ id, password, hash }`; out: `{ id, ok }`.
 *
 * @module
 */

import bcrypt from "bcryptjs";

interface Job {
  id: number;
  password: string;
  hash: string;
}

const scope = self as unknown as {
  onmessage: ((e: MessageEvent<Job>) => void) | null;
  postMessage(message: { id: number; ok: boolean }): void;
};

scope.onmessage = (e) => {
  const { id, password, hash } = e.data;
  let ok = false;
  try {
    ok = bcrypt.compareSync(password, hash);
  } catch {
    ok = false; // a malformed hash is refused at load; anything else is a failed check
  }
  scope.postMessage({ id, ok });
};
