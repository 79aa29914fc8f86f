// vistune in the page: the served model folder is fetched into @vistune/core's in-memory file system, loaded
// by the same loaders as in Node, answers on the wasm (or WebGPU) backend, takes LoRA steps on the user's image
// and exports the PEFT adapter — all client-side.

import { register as registerAdapters } from '@vistune/adapters/browser';
import {
  AdamW,
  applyLora,
  collectFiles,
  computeGradients,
  createRegistry,
  disposeGradients,
  expandPlaceholders,
  fetchModelFolder,
  generateStream,
  initBrowserBackend,
  loadPretrained,
  type MediaProcessor,
  type MultimodalModel,
  readJsonFile,
  register as registerCore,
  saveLoraAdapter,
  Tokenizer,
  tf,
} from '@vistune/core/browser';
import { register as registerEncoders } from '@vistune/encoders/browser';
import './style.css';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const status = (text: string) => {
  $('status').textContent = text;
};

interface Loaded {
  model: MultimodalModel;
  tokenizer: Tokenizer;
  processor: MediaProcessor;
  placeholder: number;
}

let loaded: Loaded | undefined;
let imageBytes: Uint8Array | undefined;

/** The test and the curious read progress here. */
const state = {
  ready: false,
  answerIds: [] as number[],
  losses: [] as number[],
  exported: false,
};
(window as unknown as { vistune: typeof state }).vistune = state;

async function load(): Promise<Loaded> {
  const params = new URLSearchParams(location.search);
  const backend = (params.get('backend') ?? 'wasm') as 'wasm' | 'webgpu' | 'cpu';
  status(`starting the ${backend} backend…`);
  const running = await initBrowserBackend({ backend, wasmPaths: new URL('./wasm/', location.href).href });
  $('backend').textContent = running;
  const source = params.get('model') ?? new URL('/vistune/files/', location.href).href;
  status(`fetching ${source}…`);
  const dir = await fetchModelFolder(source, '/models/served');
  const registry = createRegistry();
  registerCore(registry.withOrigin('@vistune/core'));
  registerEncoders(registry.withOrigin('@vistune/encoders'));
  registerAdapters(registry.withOrigin('@vistune/adapters'));
  const model = await loadPretrained(dir, registry);
  const tokenizer = await Tokenizer.fromDir(dir);
  const hf = (await readJsonFile(`${dir}/preprocessor_config.json`, 'image processor config')) as Record<
    string,
    unknown
  >;
  const entry = registry.findHf('processor', String(hf.image_processor_type ?? ''));
  if (!entry) throw new Error(`no registered image processor reads ${String(hf.image_processor_type)}`);
  const processor = (await registry.create('processor', {
    type: entry.name,
    pretrained: dir,
  })) as MediaProcessor;
  const image = model.modalities.get('image');
  if (!image) throw new Error('this page needs a model with an image modality');
  status(`${source} loaded: ${(model.numParameters() / 1e6).toFixed(2)} M parameters, ${running}`);
  return { model, tokenizer, processor, placeholder: image.placeholderTokenId };
}

/** Prompt ids (placeholder expanded) and the image tensor for one question about the current image. */
async function prepare(l: Loaded, question: string) {
  if (!imageBytes) throw new Error('choose or drop an image first');
  const prompt = l.tokenizer.applyChatTemplate(
    [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: question }] }],
    { addGenerationPrompt: true },
  );
  const processed = await l.processor.process(imageBytes);
  const slots = l.model.slotsPerItem('image', processed.tensor.shape);
  return {
    ids: expandPlaceholders(l.tokenizer.encode(prompt), l.placeholder, [slots]),
    image: processed.tensor,
  };
}

async function answer(l: Loaded): Promise<void> {
  const { ids, image } = await prepare(l, $<HTMLTextAreaElement>('question').value);
  const out = $('answer');
  out.textContent = '';
  delete out.dataset.done;
  const input = tf.tensor2d([ids], [1, ids.length], 'int32');
  const { inputsEmbeds, attentionMask } = l.model.prepareGeneration(input, { image: [[image]] });
  tf.dispose([input, image]);
  const answerIds: number[] = [];
  try {
    const stream = generateStream(
      l.model.llm,
      { inputsEmbeds, attentionMask, promptIds: [ids] },
      {
        maxNewTokens: Number($<HTMLInputElement>('max-tokens').value),
        eosTokenIds: $<HTMLInputElement>('ignore-eos').checked ? [] : l.tokenizer.eosTokenIds,
        decode: (t) => l.tokenizer.decode([...t], { skipSpecialTokens: true }),
      },
    );
    for await (const token of stream) {
      answerIds.push(token.tokenId);
      out.textContent += token.text ?? '';
    }
  } finally {
    tf.dispose([inputsEmbeds, attentionMask]);
  }
  state.answerIds = answerIds;
  out.dataset.done = 'true';
}

/** LoRA on the LLM's attention projections, trained to answer the question with the target text. */
async function tune(l: Loaded): Promise<void> {
  const { model, tokenizer } = l;
  const rank = Number($<HTMLInputElement>('rank').value);
  if (!model.namedParameters().some(([n]) => n.includes('lora_A'))) {
    applyLora(model, { r: rank, alpha: 2 * rank, targets: ['llm.*.q_proj', 'llm.*.v_proj'] });
  }
  model.trainOnly(['*lora_A*', '*lora_B*']);
  const params = model.namedParameters().filter(([, v]) => v.trainable);
  const optimizer = new AdamW(params, { lr: Number($<HTMLInputElement>('lr').value) });
  const { ids, image } = await prepare(l, $<HTMLTextAreaElement>('question').value);
  const target = [
    ...tokenizer.encode($<HTMLTextAreaElement>('target').value, { addSpecialTokens: false }),
    ...tokenizer.eosTokenIds.slice(0, 1),
  ];
  const all = [...ids, ...target];
  const inputIds = tf.tensor2d([all], [1, all.length], 'int32');
  const labels = tf.tensor2d([[...ids.map(() => -100), ...target]], [1, all.length], 'int32');
  const list = $('losses');
  list.replaceChildren();
  model.train();
  try {
    for (let step = 0; step < Number($<HTMLInputElement>('steps').value); step++) {
      const { loss, grads } = computeGradients(
        () =>
          model.forward({ inputIds, labels, media: { image: [[image]] } }, { logits: false })
            .loss as tf.Scalar,
        params,
      );
      optimizer.step(grads);
      disposeGradients(grads);
      state.losses.push(loss);
      const li = document.createElement('li');
      li.textContent = `step ${step + 1}: loss ${loss.toFixed(4)}`;
      list.append(li);
      await new Promise((r) => setTimeout(r, 0)); // let the page paint between steps
    }
  } finally {
    model.eval();
    tf.dispose([inputIds, labels, image]);
  }
  await saveLoraAdapter(model, '/export/adapter', {
    checkpointName: (n) => model.family?.checkpointName(n) ?? n,
  });
  const files = collectFiles('/export/adapter');
  const links = Object.entries(files).map(([name, bytes]) => {
    const a = document.createElement('a');
    a.id = name === 'adapter_config.json' ? 'download-config' : 'download-weights';
    a.download = name;
    a.textContent = name;
    a.href = URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>]));
    return a;
  });
  $('downloads').replaceChildren(...links);
  state.exported = true;
}

function useFile(file: File): void {
  file.arrayBuffer().then(async (buffer) => {
    imageBytes = new Uint8Array(buffer);
    const bitmap = await createImageBitmap(file);
    const canvas = $<HTMLCanvasElement>('canvas');
    const scale = Math.min(384 / bitmap.width, 288 / bitmap.height);
    canvas.width = Math.round(bitmap.width * scale);
    canvas.height = Math.round(bitmap.height * scale);
    const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
    ctx.imageSmoothingEnabled = false;
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    $('drop').classList.add('has-image');
  });
}

function busy(button: string, work: () => Promise<void>) {
  return (event: Event) => {
    event.preventDefault();
    if (!loaded) return;
    const b = $<HTMLButtonElement>(button);
    b.disabled = true;
    work()
      .catch((err: Error) => status(`error: ${err.message}`))
      .finally(() => {
        b.disabled = false;
      });
  };
}

$('ask').addEventListener(
  'submit',
  busy('answer-button', () => answer(loaded as Loaded)),
);
$('tune').addEventListener(
  'submit',
  busy('tune-button', () => tune(loaded as Loaded)),
);
$<HTMLInputElement>('file').addEventListener('change', (e) => {
  const file = (e.target as HTMLInputElement).files?.[0];
  if (file) useFile(file);
});
$('drop').addEventListener('dragover', (e) => e.preventDefault());
$('drop').addEventListener('drop', (e) => {
  e.preventDefault();
  const file = e.dataTransfer?.files[0];
  if (file) useFile(file);
});

load()
  .then((l) => {
    loaded = l;
    state.ready = true;
    $<HTMLButtonElement>('answer-button').disabled = false;
    $<HTMLButtonElement>('tune-button').disabled = false;
  })
  .catch((err: Error) => status(`error: ${err.message}`));
