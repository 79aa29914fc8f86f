// `vistune serve`'s HTTP side on fastify: OpenAI's /v1/chat/completions (JSON or SSE), /v1/models, /health,
// the model card and the playground's static files. Requests are validated and their media preprocessed here;
// the Scheduler runs them on the model.
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import type { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import fastifyStatic from '@fastify/static';
import type { AnswerAnnotator } from '@vistune/core';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { PreparedRequest, VisionLanguageModel } from '../api/model.js';
import { type SamplingFlags, samplingOptions } from '../options.js';
import { modelCard } from './card.js';
import { type MediaLimits, toVlmRequest } from './media.js';
import { ApiError, finishReason, parseChatRequest, samplingFlagsFor, usage } from './protocol.js';
import { type JobResult, Scheduler } from './scheduler.js';

export interface ServeOptions {
  vlm: VisionLanguageModel;
  /** The name clients send as `model` (and /v1/models lists). */
  id: string;
  /** Sampling settings of requests that do not set them (the command's flags). */
  defaults: SamplingFlags;
  /** Bearer token every /v1 request must carry; none = open. */
  apiKey?: string;
  media: MediaLimits;
  /** Largest request body in bytes. */
  bodyLimit: number;
  maxBatch: number;
  maxQueue: number;
  /** Annotators run on every answer besides the model's heads (a location codec: boxes in the answer text). */
  annotators?: readonly AnswerAnnotator[];
  /** Serve the model folder's top-level files at /vistune/files/ (for the in-browser page). */
  serveModelFiles?: boolean;
  /** Folder of the built playground, served at /. */
  playgroundDir?: string;
  /** One line per finished request (method, path, status, ms). */
  log?: (line: string) => void;
}

export interface VistuneServer {
  app: FastifyInstance;
  scheduler: Scheduler;
  /** Stops accepting, lets in-flight work finish within `graceMs` (then cancels it) and closes the sockets. */
  close(graceMs: number): Promise<void>;
}

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Fastify's own errors (body too large, bad JSON …) and ours, in OpenAI's error shape. */
function asApiError(err: unknown): ApiError {
  if (err instanceof ApiError) return err;
  const e = err as { statusCode?: number; code?: string; message?: string };
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE')
    return new ApiError(
      413,
      `the request body is larger than the server's limit (--max-body-bytes): ${e.message}`,
      null,
      'body_too_large',
    );
  if (e.statusCode && e.statusCode >= 400 && e.statusCode < 500)
    return new ApiError(e.statusCode, e.message ?? 'bad request', null, e.code ?? null);
  return new ApiError(500, e.message ?? String(err));
}

function sendError(reply: FastifyReply, err: unknown): FastifyReply {
  const api = asApiError(err);
  return reply.status(api.status === 499 ? 400 : api.status).send(api.toJSON());
}

export async function createServer(opts: ServeOptions): Promise<VistuneServer> {
  const { vlm, id } = opts;
  const scheduler = new Scheduler(vlm, {
    maxBatch: opts.maxBatch,
    maxQueue: opts.maxQueue,
    annotators: opts.annotators,
  });
  const app = Fastify({ bodyLimit: opts.bodyLimit, logger: false, return503OnClosing: true });
  const created = Math.floor(Date.now() / 1000);
  let closing = false;

  app.setErrorHandler((err, _req, reply) => sendError(reply, err));
  app.setNotFoundHandler((req, reply) =>
    sendError(reply, new ApiError(404, `no route ${req.method} ${req.url}`, null, 'not_found')),
  );
  if (opts.log) {
    const log = opts.log;
    app.addHook('onResponse', async (req, reply) => {
      log(`${req.method} ${req.url.split('?')[0]} ${reply.statusCode} ${Math.round(reply.elapsedTime)}ms`);
    });
  }
  app.addHook('onRequest', async (req) => {
    if (!opts.apiKey || !(req.url.startsWith('/v1/') || req.url.startsWith('/vistune/files/'))) return;
    const header = req.headers.authorization ?? '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (!sameSecret(token, opts.apiKey))
      throw new ApiError(
        401,
        "missing or wrong API key: send Authorization: Bearer <key> (the server's --api-key / VISTUNE_API_KEY)",
        null,
        'invalid_api_key',
      );
  });

  app.get('/health', async (_req, reply) =>
    reply
      .status(closing ? 503 : 200)
      .send({ status: closing ? 'shutting_down' : 'ok', model: id, ...scheduler.stats }),
  );
  const modelObject = { id, object: 'model', created, owned_by: 'vistune' };
  app.get('/v1/models', async () => ({ object: 'list', data: [modelObject] }));
  app.get<{ Params: { id: string } }>('/v1/models/:id', async (req) => {
    if (req.params.id !== id)
      throw new ApiError(
        404,
        `model '${req.params.id}' is not served here (this server serves '${id}')`,
        'model',
        'model_not_found',
      );
    return modelObject;
  });
  app.get('/vistune/card', async () => ({ ...modelCard(vlm, id), authRequired: Boolean(opts.apiKey) }));

  app.post('/v1/chat/completions', async (req: FastifyRequest, reply: FastifyReply) => {
    const body = parseChatRequest(req.body);
    if (body.model !== undefined && body.model !== id)
      throw new ApiError(
        404,
        `model '${body.model}' is not served here (this server serves '${id}')`,
        'model',
        'model_not_found',
      );
    const flags = samplingFlagsFor(body, opts.defaults);
    const request = await toVlmRequest(vlm, body.messages, opts.media);
    let prepared: PreparedRequest;
    try {
      prepared = await vlm.prepare(request);
    } catch (err) {
      throw new ApiError(400, `messages: ${(err as Error).message}`, 'messages');
    }
    const room = vlm.contextLength - prepared.inputIds.length;
    if (flags.maxNewTokens > room) {
      releaseMedia(prepared);
      throw new ApiError(
        400,
        `the prompt has ${prepared.inputIds.length} tokens; with max_tokens ${flags.maxNewTokens} it exceeds the model's context of ${vlm.contextLength} (lower max_tokens to ${Math.max(room, 0)} or shorten the conversation)`,
        'max_tokens',
        'context_length_exceeded',
      );
    }
    const abort = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableEnded) abort.abort();
    });
    const completionId = `chatcmpl-${randomBytes(12).toString('hex')}`;
    const options = samplingOptions(flags);
    if (!body.stream) {
      const result = await scheduler.submit({ prepared, options, signal: abort.signal });
      return reply.send(completion(completionId, id, result));
    }
    reply.hijack();
    const raw = reply.raw;
    raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) =>
      sse(raw, {
        id: completionId,
        object: 'chat.completion.chunk',
        created: now(),
        model: id,
        choices,
        ...extra,
      });
    chunk([{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }]);
    try {
      const result = await scheduler.submit({
        prepared,
        options,
        signal: abort.signal,
        onText: (text) =>
          chunk([{ index: 0, delta: { content: text }, logprobs: null, finish_reason: null }]),
      });
      chunk([{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason(result.finishReason) }], {
        vistune: vistuneFields(result),
      });
      if (body.stream_options?.include_usage)
        chunk([], { usage: usage(result.promptTokens, result.ids.length) });
    } catch (err) {
      if (!abort.signal.aborted) sse(raw, asApiError(err).toJSON());
    }
    if (!raw.writableEnded) raw.end('data: [DONE]\n\n');
  });

  if (opts.serveModelFiles) {
    const root = await realpath(vlm.dir);
    app.get<{ Params: { name: string } }>('/vistune/files/:name', async (req, reply) => {
      const { name } = req.params;
      const path = join(root, name);
      // Top-level plain files of the model folder only (no dot files, no way out of it).
      const info = /^[\w][\w.-]*$/.test(name) ? await stat(path).catch(() => undefined) : undefined;
      if (!info?.isFile() || dirname(await realpath(path)) !== root)
        throw new ApiError(404, `the model folder has no file '${name}'`, null, 'not_found');
      return reply
        .type(name.endsWith('.json') ? 'application/json' : 'application/octet-stream')
        .header('content-length', info.size)
        .send(createReadStream(path));
    });
  }
  if (opts.playgroundDir && existsSync(opts.playgroundDir))
    await app.register(fastifyStatic, { root: opts.playgroundDir, prefix: '/' });

  return {
    app,
    scheduler,
    async close(graceMs: number) {
      closing = true;
      await scheduler.close(graceMs);
      await app.close();
    },
  };
}

/** Frees the media tensors of a request that is refused after preprocessing. */
function releaseMedia(prepared: PreparedRequest): void {
  for (const list of Object.values(prepared.media)) for (const t of list.flat()) t.dispose();
}

const now = () => Math.floor(Date.now() / 1000);

function sse(raw: ServerResponse, data: unknown): void {
  if (!raw.writableEnded && !raw.destroyed) raw.write(`data: ${JSON.stringify(data)}\n\n`);
}

/** vistune's additions to a completion: the generated token ids and the heads' / codecs' annotations. */
function vistuneFields(result: JobResult) {
  return {
    token_ids: result.ids,
    annotations: result.annotations.map((a) => ({ ...a.json, lines: a.lines })),
  };
}

function completion(completionId: string, model: string, result: JobResult) {
  return {
    id: completionId,
    object: 'chat.completion',
    created: now(),
    model,
    choices: [
      {
        index: 0,
        message: { role: 'assistant', content: result.text, refusal: null },
        logprobs: null,
        finish_reason: finishReason(result.finishReason),
      },
    ],
    usage: usage(result.promptTokens, result.ids.length),
    vistune: vistuneFields(result),
  };
}
