// openai_client.mjs: drives lzn-server with the official OpenAI client for
// Node (tests/server/test_http.py installs it into build/npm).
//
//   node openai_client.mjs < jobs.json > results.json
//
// Input: {"baseURL", "apiKey", "requests": [{"kind": "completion"|"chat",
// "stream": bool, "params": {...}}]}. Output: one result per request,
// {"text", "finish_reason", "usage", "chunks"} or {"error": {"status",
// "message", "type"}} when the client threw.
import OpenAI from "openai";

const input = JSON.parse(await new Promise((resolve) => {
  let data = "";
  process.stdin.on("data", (c) => (data += c));
  process.stdin.on("end", () => resolve(data));
}));
const client = new OpenAI({ baseURL: input.baseURL, apiKey: input.apiKey, maxRetries: 0, timeout: 60000 });

async function run(job) {
  const params = { ...job.params, stream: job.stream };
  const api = job.kind === "chat" ? client.chat.completions : client.completions;
  try {
    if (!job.stream) {
      const r = await api.create(params);
      const c = r.choices[0];
      return { text: job.kind === "chat" ? c.message.content : c.text, finish_reason: c.finish_reason,
               usage: r.usage, object: r.object };
    }
    const stream = await api.create(params);
    let text = "", finish = null, usage = null, chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      if (chunk.usage) usage = chunk.usage;
      const c = chunk.choices[0];
      if (!c) continue;
      text += job.kind === "chat" ? (c.delta.content ?? "") : c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
    return { text, finish_reason: finish, usage, chunks };
  } catch (e) {
    return { error: { status: e.status ?? null, message: String(e.message), type: e.type ?? null } };
  }
}

const results = [];
for (const job of input.requests) results.push(await run(job));
process.stdout.write(JSON.stringify(results));
