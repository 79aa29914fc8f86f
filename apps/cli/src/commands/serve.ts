import { fileURLToPath } from 'node:url';
import type { AnswerAnnotator } from '@vistune/core';
import type { Command } from 'commander';
import { loadModel } from '../api/model.js';
import {
  addLmHeadOption,
  addPluginOption,
  addSamplingOptions,
  backendOption,
  commandRegistry,
  parseNonNegative,
  parsePositiveInt,
  type SamplingFlags,
} from '../options.js';
import { modelId } from '../serve/card.js';
import { resolveAllowDirs } from '../serve/media.js';
import { createServer } from '../serve/server.js';
import { CliError, color } from '../ui.js';

interface ServeFlags extends SamplingFlags {
  lmHead: 'float32' | 'int8';
  model: string;
  modelName?: string;
  host: string;
  port: number;
  apiKey?: string;
  allowDir?: string[];
  maxBodyBytes: number;
  maxImageBytes: number;
  maxImages: number;
  maxBatch: number;
  maxQueue: number;
  shutdownGrace: number;
  playground?: string | false;
  codec?: string;
  modelFiles: boolean;
  quiet?: boolean;
}

/** The playground built next to the command (dist/playground), unless --playground names another folder. */
const bundledPlayground = fileURLToPath(new URL('./playground/', import.meta.url));

export function registerServeCommand(program: Command): void {
  const cmd = program
    .command('serve')
    .description(
      'Serve a model over the OpenAI chat API (/v1/chat/completions, streaming, images as data URLs) with a web playground at /',
    )
    .requiredOption('--model <dir>', 'model folder (LLaVA-HF, a vistune composition, or a text-only LM)')
    .option('--model-name <id>', 'the model id clients send and /v1/models lists (default: the folder name)')
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option(
      '--port <n>',
      'port to listen on (0 = any free port)',
      (v) => (v === '0' ? 0 : parsePositiveInt(v)),
      8000,
    )
    .option('--api-key <key>', 'require Authorization: Bearer <key> on /v1 (default: env VISTUNE_API_KEY)')
    .option(
      '--allow-dir <dir...>',
      'folders whose files requests may name as file:// image URLs (default: none; data: URLs always work)',
    )
    .option('--max-body-bytes <n>', 'largest request body', parsePositiveInt, 32 * 1024 * 1024)
    .option('--max-image-bytes <n>', 'largest media item (decoded)', parsePositiveInt, 16 * 1024 * 1024)
    .option('--max-images <n>', 'most media items per request', parsePositiveInt, 8)
    .option('--max-batch <n>', 'most queued requests answered in one batched forward', parsePositiveInt, 8)
    .option('--max-queue <n>', 'most waiting requests; more get 503', parsePositiveInt, 256)
    .option(
      '--shutdown-grace <seconds>',
      'on SIGTERM/SIGINT, time in-flight requests get to finish before they are cancelled',
      parseNonNegative,
      10,
    )
    .option(
      '--codec <name>',
      'parse boxes from every answer with this registered codec (vistune registry --kind codec); they come back as annotations',
    )
    .option('--playground <dir>', 'folder of the web playground served at / (default: the bundled one)')
    .option('--no-playground', 'serve the API only')
    .option(
      '--no-model-files',
      "do not serve the model folder's files at /vistune/files/ (the in-browser page loads the model from there)",
    )
    .option('--quiet', 'no request log on stderr');
  addPluginOption(cmd);
  addLmHeadOption(cmd);
  addSamplingOptions(cmd)
    .addHelpText(
      'after',
      '\nSampling flags are the defaults of requests that do not set temperature, top_p, max_tokens …\n\nExample:\n  $ vistune serve --model ./runs/demo/model --port 8000\n  $ curl localhost:8000/v1/chat/completions -d \'{"messages":[{"role":"user","content":"Hi"}]}\'',
    )
    .action(async (flags: ServeFlags, command: Command) => {
      const registry = await commandRegistry(command);
      const codec = flags.codec
        ? ((await registry.create('codec', { type: flags.codec })) as Partial<AnswerAnnotator>)
        : undefined;
      if (codec && typeof codec.annotate !== 'function')
        throw new CliError(
          `--codec ${flags.codec}: this codec does not annotate answers (it has no annotate())`,
          2,
        );
      const vlm = await loadModel(flags.model, {
        registry,
        backend: backendOption(command),
        lmHead: flags.lmHead,
      }).catch((err: Error) => {
        throw new CliError(err.message);
      });
      const id = modelId(flags.model, flags.modelName);
      const log = flags.quiet ? undefined : (line: string) => process.stderr.write(`${color.dim(line)}\n`);
      const server = await createServer({
        vlm,
        id,
        defaults: flags,
        apiKey: flags.apiKey ?? (process.env.VISTUNE_API_KEY || undefined),
        media: {
          maxItemBytes: flags.maxImageBytes,
          maxItems: flags.maxImages,
          allowDirs: await resolveAllowDirs(flags.allowDir ?? []),
        },
        bodyLimit: flags.maxBodyBytes,
        maxBatch: flags.maxBatch,
        maxQueue: flags.maxQueue,
        annotators: codec ? [codec as AnswerAnnotator] : [],
        serveModelFiles: flags.modelFiles,
        playgroundDir: flags.playground === false ? undefined : (flags.playground ?? bundledPlayground),
        log,
      });
      const address = await server.app.listen({ host: flags.host, port: flags.port });
      process.stdout.write(`vistune serve: ${id} on ${address} (OpenAI API at ${address}/v1)\n`);
      await new Promise<void>((resolve) => {
        const stop = (signal: string) => {
          process.stderr.write(`${signal}: finishing in-flight requests (up to ${flags.shutdownGrace}s)\n`);
          server
            .close(flags.shutdownGrace * 1000)
            .catch((err: Error) => process.stderr.write(`shutdown: ${err.message}\n`))
            .finally(resolve);
        };
        process.once('SIGTERM', () => stop('SIGTERM'));
        process.once('SIGINT', () => stop('SIGINT'));
      });
      vlm.dispose();
      process.stdout.write('vistune serve: stopped\n');
    });
}
