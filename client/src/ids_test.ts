import assert from "node:assert/strict";
import { randomId } from "./ids.ts";

const UUID_V4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

Deno.test("ids: randomUUID where the page has it", () => {
  const source = { getRandomValues: () => new Uint8Array(16), randomUUID: () => "1-2-3-4-5" };
  assert.equal(randomId(source as never), "1-2-3-4-5");
  assert.match(randomId(), UUID_V4);
});

Deno.test("ids: a version 4 UUID from getRandomValues where randomUUID is missing", () => {
  const source = {
    getRandomValues: <T extends ArrayBufferView>(a: T) => crypto.getRandomValues(a),
  };
  const ids = Array.from({ length: 1000 }, () => randomId(source as never));
  for (const id of ids) assert.match(id, UUID_V4);
  assert.equal(new Set(ids).size, ids.length);
});

Deno.test("ids: the version and variant bits are set whatever the random bytes", () => {
  const fill = (byte: number) => ({
    getRandomValues: <T extends ArrayBufferView>(array: T) => {
      (array as unknown as Uint8Array).fill(byte);
      return array;
    },
  });
  assert.equal(randomId(fill(0xff) as never), "ffffffff-ffff-4fff-bfff-ffffffffffff");
  assert.equal(randomId(fill(0x00) as never), "00000000-0000-4000-8000-000000000000");
});
