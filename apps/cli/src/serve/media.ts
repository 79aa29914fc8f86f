// Media parts of a chat request → bytes for the model's processors. Data URLs are decoded here; file URLs are
// read only inside the --allow-dir folders (symlinks resolved first); remote URLs are never fetched.
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VisionLanguageModel, VlmContentPart, VlmRequest } from '../api/model.js';
import { ApiError, type ChatMessageIn } from './protocol.js';

export interface MediaLimits {
  /** Largest media item, in bytes (decoded). */
  maxItemBytes: number;
  /** Most media items in one request. */
  maxItems: number;
  /** Folders (absolute, real paths) whose files may be named by file:// URLs. */
  allowDirs: readonly string[];
}

function inside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** Bytes of a `data:` URL, refusing it before decoding when it would exceed the limit. */
function dataUrlBytes(url: string, param: string, limits: MediaLimits): Uint8Array {
  const comma = url.indexOf(',');
  if (comma < 0) throw new ApiError(400, `${param}: malformed data URL (no comma)`, param);
  const header = url.slice(5, comma);
  const payload = url.slice(comma + 1);
  if (!header.endsWith(';base64'))
    throw new ApiError(400, `${param}: data URLs must be base64 (data:image/png;base64,…)`, param);
  if (Math.floor((payload.length * 3) / 4) > limits.maxItemBytes)
    throw new ApiError(
      413,
      `${param}: the item is larger than the server's limit of ${limits.maxItemBytes} bytes (--max-image-bytes)`,
      param,
      'media_too_large',
    );
  return new Uint8Array(Buffer.from(payload, 'base64'));
}

async function fileUrlBytes(url: string, param: string, limits: MediaLimits): Promise<Uint8Array> {
  let path: string;
  try {
    path = await realpath(fileURLToPath(url));
  } catch {
    throw new ApiError(400, `${param}: ${url} does not name a readable file`, param);
  }
  if (!limits.allowDirs.some((dir) => inside(dir, path)))
    throw new ApiError(
      403,
      `${param}: file URLs are read only under the server's --allow-dir folders (${limits.allowDirs.length ? limits.allowDirs.join(', ') : 'none given'})`,
      param,
      'file_not_allowed',
    );
  const info = await stat(path);
  if (!info.isFile()) throw new ApiError(400, `${param}: ${url} is not a file`, param);
  if (info.size > limits.maxItemBytes)
    throw new ApiError(
      413,
      `${param}: the file is larger than the server's limit of ${limits.maxItemBytes} bytes (--max-image-bytes)`,
      param,
      'media_too_large',
    );
  return new Uint8Array(await readFile(path));
}

/** The bytes a media URL stands for. */
export async function mediaBytes(url: string, param: string, limits: MediaLimits): Promise<Uint8Array> {
  if (url.startsWith('data:')) return dataUrlBytes(url, param, limits);
  if (url.startsWith('file:')) return fileUrlBytes(url, param, limits);
  throw new ApiError(
    400,
    `${param}: only data: URLs (and file: URLs under --allow-dir) are accepted; the server does not fetch remote URLs`,
    param,
  );
}

/** OpenAI messages → the high-level API's request: media parts become `{ type: modality }` plus their bytes. */
export async function toVlmRequest(
  vlm: VisionLanguageModel,
  messages: readonly ChatMessageIn[],
  limits: MediaLimits,
): Promise<VlmRequest> {
  const media: Record<string, Uint8Array[]> = {};
  let items = 0;
  const out: VlmRequest['messages'][number][] = [];
  for (const [i, m] of messages.entries()) {
    const role = m.role === 'developer' ? 'system' : m.role;
    if (m.content === null || typeof m.content === 'string') {
      const text = m.content ?? '';
      // Multimodal chat templates iterate content parts (as `vistune chat` sends them); text-only ones take strings.
      const asParts = vlm.modalities.size > 0;
      out.push({ role, content: asParts ? [{ type: 'text', text }] : text });
      continue;
    }
    const parts: VlmContentPart[] = [];
    for (const [j, part] of m.content.entries()) {
      if (part.type === 'text') {
        parts.push({ type: 'text', text: (part as { text: string }).text });
        continue;
      }
      const param = `messages.${i}.content.${j}.${part.type}`;
      const kind = part.type.slice(0, -'_url'.length);
      let modality: string;
      try {
        modality = vlm.modalityFor(kind).name;
      } catch (err) {
        throw new ApiError(400, `${param}: ${(err as Error).message}`, param);
      }
      if (++items > limits.maxItems)
        throw new ApiError(
          413,
          `${param}: more than the server's limit of ${limits.maxItems} media items per request (--max-images)`,
          param,
          'too_many_media_items',
        );
      const spec = (part as Record<string, unknown>)[part.type];
      const url = typeof spec === 'string' ? spec : (spec as { url?: unknown } | undefined)?.url;
      if (typeof url !== 'string')
        throw new ApiError(400, `${param}: expected { url: "data:…" } or a URL string`, param);
      media[modality] = [...(media[modality] ?? []), await mediaBytes(url, `${param}.url`, limits)];
      parts.push({ type: modality });
    }
    out.push({ role, content: parts });
  }
  return { messages: out, media };
}

/** --allow-dir values as real absolute paths (a missing folder is an error naming it). */
export async function resolveAllowDirs(dirs: readonly string[]): Promise<string[]> {
  return Promise.all(
    dirs.map(async (d) => {
      try {
        return await realpath(resolve(d));
      } catch {
        throw new Error(`--allow-dir ${d}: no such folder`);
      }
    }),
  );
}
