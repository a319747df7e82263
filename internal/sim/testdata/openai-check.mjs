// Drives the Hermes simulator with the official openai npm client and prints
// what the client saw as JSON, for TestNodeOpenAIClient to check.
// Usage: SIM_URL=http://127.0.0.1:8642 SIM_KEY=k node openai-check.mjs
import OpenAI from 'openai';

const baseURL = process.env.SIM_URL + '/v1';
const headers = { 'X-Hermes-Session-Id': 'node-1' };
const client = new OpenAI({ baseURL, apiKey: process.env.SIM_KEY, maxRetries: 0 });
const params = { model: 'hermes-agent', messages: [{ role: 'user', content: 'hello from node' }] };

const { data: completion, response } = await client.chat.completions
  .create(params, { headers })
  .withResponse();

const stream = await client.chat.completions.create({ ...params, stream: true }, { headers });
let text = '';
let finish = null;
let usage = null;
let toolEvents = 0;
for await (const chunk of stream) {
  // hermes.tool.progress events come through as objects without choices.
  if (!chunk.choices) {
    toolEvents++;
    continue;
  }
  const choice = chunk.choices[0];
  text += choice?.delta?.content ?? '';
  finish = choice?.finish_reason ?? finish;
  usage = chunk.usage ?? usage;
}

let wrongKey = null;
try {
  await new OpenAI({ baseURL, apiKey: 'wrong', maxRetries: 0 }).chat.completions.create(params);
} catch (err) {
  wrongKey = { status: err.status, code: err.code };
}

console.log(JSON.stringify({
  completion: {
    content: completion.choices[0].message.content,
    usage: completion.usage,
    session: response.headers.get('x-hermes-session-id'),
  },
  stream: { text, finish, usage, toolEvents },
  wrongKey,
}));
