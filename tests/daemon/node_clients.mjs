// The Vercel AI SDK (whose default OpenAI provider speaks the Responses API) and the openai npm
// SDK against a daemon; run by test_node_clients.py, which checks what this prints.
import { generateText, streamText, embedMany, tool } from 'ai';
import { createOpenAI } from '@ai-sdk/openai';
import OpenAI from 'openai';
import { z } from 'zod';

const url = process.argv[2];
const say = (name, value) => console.log(JSON.stringify([name, value]));
const provider = createOpenAI({ baseURL: url + '/v1', apiKey: 'unused' });

const text = await generateText({ model: provider('chat'), system: 'be brief', prompt: 'hello there' });
say('generateText', [text.text, text.usage.totalTokens]);
const streamed = streamText({ model: provider('chat'), prompt: 'one two three' });
const parts = [];
for await (const part of streamed.textStream) parts.push(part);
say('streamText', parts);
const weather = tool({ description: 'Weather', inputSchema: z.object({ input: z.string() }), execute: async () => 'sunny' });
const called = await generateText({ model: provider('tools'), prompt: 'weather in Oslo', tools: { get_weather: weather } });
say('tools', [called.toolCalls.map((c) => [c.toolName, c.input]), called.toolResults.map((r) => r.output)]);
const embedded = await embedMany({ model: provider.textEmbeddingModel('emb'), values: ['a', 'b c'] });
say('embedMany', [embedded.embeddings.map((v) => v.length), embedded.usage.tokens]);

const client = new OpenAI({ baseURL: url + '/v1', apiKey: 'unused', maxRetries: 0 });
say('responses', (await client.responses.create({ model: 'chat', input: 'npm sdk' })).output_text);
const kinds = [];
for await (const event of await client.responses.create({ model: 'chat', input: 'npm stream', stream: true })) {
  kinds.push(event.type);
}
say('responses.stream', [kinds[0], kinds[kinds.length - 1]]);
say('embeddings', (await client.embeddings.create({ model: 'emb', input: 'x' })).data[0].embedding.length);
