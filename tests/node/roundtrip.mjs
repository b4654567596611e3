// The official @runloop/api-client, unchanged, against stowage: create -> upload ->
// complete -> retrieve/list -> idempotent create -> download -> delete, then the SDK's own
// upload/download helpers. Reads RUNLOOP_BASE_URL and RUNLOOP_API_KEY like any SDK user;
// with SDK_HTTP2=0 it passes the SDK's documented opt-out, `http2: false`.
// Prints one JSON line of what it saw; any failure throws and exits non-zero.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import Runloop from "@runloop/api-client";
import { RunloopSDK } from "@runloop/api-client/sdk";

const options = process.env.SDK_HTTP2 === "0" ? { http2: false } : {};
const client = new Runloop(options); // the SDK's defaults: retries, timeouts, transport
const sha256 = (bytes) => createHash("sha256").update(bytes).digest("hex");

const data = randomBytes(256 * 1024 + 3);
const created = await client.objects.create({
  name: "node-sdk.bin",
  content_type: "binary",
  metadata: { sdk: "node" },
});
assert.equal(created.state, "UPLOADING");
const put = await fetch(created.upload_url, { method: "PUT", body: data });
assert.equal(put.status, 200);
const done = await client.objects.complete(created.id);
assert.equal(done.state, "READ_ONLY");
assert.equal(done.size_bytes, data.length);

const again = await client.objects.retrieve(created.id);
assert.deepEqual(again.metadata, { sdk: "node" });
const listed = [];
for await (const obj of client.objects.list({ search: created.id })) listed.push(obj.id);
assert.deepEqual(listed, [created.id]);

const { download_url } = await client.objects.download(created.id, { duration_seconds: 60 });
const fetched = Buffer.from(await (await fetch(download_url)).arrayBuffer());
assert.equal(sha256(fetched), sha256(data));

// The same idempotencyKey (sent as x-request-id, as on the SDK's own retries): one object.
const keyed = { name: "node-keyed.txt", content_type: "text" };
const idempotencyKey = `node-once-${created.id}`;
const once = await client.objects.create(keyed, { idempotencyKey });
assert.equal((await client.objects.create(keyed, { idempotencyKey })).id, once.id);
await client.objects.delete(once.id);

const deleted = await client.objects.delete(created.id);
assert.equal(deleted.state, "DELETED");
let missing = null;
try {
  await client.objects.download(created.id);
} catch (error) {
  missing = error.status;
}
assert.equal(missing, 400); // the Runloop spec: downloading a deleted object is a 400

const sdk = new RunloopSDK(options);
const text = await sdk.storageObject.uploadFromText("hello from node", "hello.txt");
assert.equal(await text.downloadAsText(), "hello from node");
await text.delete();

console.log(JSON.stringify({ id: created.id, bytes: data.length, listed, missing }));
