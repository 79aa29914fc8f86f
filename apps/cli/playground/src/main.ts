// The playground page: an image (dropped or chosen), a streamed chat with the served model over its OpenAI
// API, the heads' / codecs' boxes and masks drawn over the image, and the model card.
import type { ModelCard } from '../../src/serve/card-types.js';
import { type Annotations, drawAnnotations } from './overlay.js';
import { sseEvents } from './sse.js';
import './style.css';

type Card = ModelCard & { authRequired: boolean };

type Part = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } };
interface Message {
  role: 'user' | 'assistant';
  content: string | Part[];
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const canvas = $<HTMLCanvasElement>('canvas');
const ctx = canvas.getContext('2d') as CanvasRenderingContext2D;
const chat = $<HTMLOListElement>('chat');
const prompt = $<HTMLTextAreaElement>('prompt');
const send = $<HTMLButtonElement>('send');

let card: Card | undefined;
let history: Message[] = [];
/** The image shown: its data URL and element, attached to the next message until it is sent. */
let image: { url: string; element: HTMLImageElement; pending: boolean } | undefined;

const fmt = (n: number) =>
  n >= 1e9
    ? `${(n / 1e9).toFixed(2)} B`
    : n >= 1e6
      ? `${(n / 1e6).toFixed(2)} M`
      : n >= 1e3
        ? `${(n / 1e3).toFixed(1)} k`
        : String(n);

function row(name: string, value: string): HTMLTableRowElement {
  const tr = document.createElement('tr');
  for (const text of [name, value]) {
    const td = document.createElement('td');
    td.textContent = text;
    tr.append(td);
  }
  return tr;
}

async function loadCard(): Promise<void> {
  const res = await fetch('/vistune/card');
  card = (await res.json()) as Card;
  $('model-id').textContent = `${card.id} · ${card.family} · ${card.backend}`;
  const table = $<HTMLTableElement>('card-table');
  table.replaceChildren(
    row('model', card.id),
    row('family', card.family),
    row('language model', card.llm),
    ...card.modalities.map((m) => row(`modality ${m.name}`, `${m.kind}: ${m.encoder} → ${m.adapter}`)),
    row('heads', card.heads.join(', ') || 'none'),
    row('parameters', fmt(card.parameters.total)),
    ...Object.entries(card.parameters.parts).map(([part, n]) => row(`  ${part}`, fmt(n))),
    row('context', card.contextLength === null ? 'unbounded' : `${card.contextLength} tokens`),
    row('backend', card.backend),
    row('plugins', card.plugins.join(', ') || 'none'),
  );
  $('key-label').hidden = !card.authRequired;
  table.dataset.ready = 'true';
}

/** Shows the image scaled to the canvas, with `annotations` over it. */
function paint(annotations?: Annotations): number {
  if (!image) return 0;
  const { element } = image;
  const scale = Math.min(384 / element.naturalWidth, 288 / element.naturalHeight);
  canvas.width = Math.round(element.naturalWidth * scale);
  canvas.height = Math.round(element.naturalHeight * scale);
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(element, 0, 0, canvas.width, canvas.height);
  return annotations ? drawAnnotations(ctx, annotations, scale) : 0;
}

function useFile(file: File): void {
  if (!file.type.startsWith('image/')) return;
  const reader = new FileReader();
  reader.onload = () => {
    const element = new Image();
    element.onload = () => {
      image = { url: String(reader.result), element, pending: true };
      paint();
      $('drop').classList.add('has-image');
      $('attached').textContent =
        `${file.name} (${element.naturalWidth}×${element.naturalHeight}) goes with your next message`;
      canvas.dataset.annotations = '0';
    };
    element.src = String(reader.result);
  };
  reader.readAsDataURL(file);
}

function bubble(kind: string, text: string): HTMLLIElement {
  const li = document.createElement('li');
  li.className = kind;
  li.textContent = text;
  chat.append(li);
  li.scrollIntoView({ block: 'end' });
  return li;
}

async function ask(question: string): Promise<void> {
  const parts: Part[] = [];
  const user = bubble('user', '');
  if (image?.pending) {
    parts.push({ type: 'image_url', image_url: { url: image.url } });
    const thumb = document.createElement('img');
    thumb.src = image.url;
    user.append(thumb);
    image.pending = false;
    $('attached').textContent = '';
  }
  user.append(question);
  parts.push({ type: 'text', text: question });
  history.push({ role: 'user', content: parts });
  const answer = bubble('assistant', '');
  const key = $<HTMLInputElement>('api-key').value;
  const res = await fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(key ? { authorization: `Bearer ${key}` } : {}) },
    body: JSON.stringify({
      model: card?.id,
      messages: history,
      stream: true,
      stream_options: { include_usage: true },
      temperature: Number($<HTMLInputElement>('temperature').value),
      max_tokens: Number($<HTMLInputElement>('max-tokens').value),
    }),
  });
  if (!res.ok || !res.body) {
    const err = (await res.json().catch(() => ({}))) as { error?: { message?: string } };
    history.pop();
    answer.className = 'error';
    answer.textContent = err.error?.message ?? `HTTP ${res.status}`;
    return;
  }
  let text = '';
  const notes: string[] = [];
  for await (const event of sseEvents(res.body)) {
    const e = event as {
      error?: { message: string };
      choices?: { delta?: { content?: string }; finish_reason?: string | null }[];
      usage?: { completion_tokens: number };
      vistune?: { annotations: Annotations[] };
    };
    if (e.error) throw new Error(e.error.message);
    const delta = e.choices?.[0]?.delta?.content;
    if (delta) {
      text += delta;
      answer.textContent = text;
    }
    if (e.choices?.[0]?.finish_reason) notes.push(`finish: ${e.choices[0].finish_reason}`);
    if (e.usage) notes.push(`${e.usage.completion_tokens} tokens`);
    if (e.vistune) {
      const merged: Annotations = { boxes: [], points: [], masks: [] };
      for (const a of e.vistune.annotations) {
        merged.boxes?.push(...(a.boxes ?? []));
        merged.points?.push(...(a.points ?? []));
        merged.masks?.push(...(a.masks ?? []));
      }
      const drawn = paint(merged);
      canvas.dataset.annotations = String(drawn);
      if (drawn) notes.push(`${drawn} annotation(s) drawn`);
    }
  }
  const note = document.createElement('span');
  note.className = 'note';
  note.textContent = notes.join(' · ');
  answer.append(note);
  answer.dataset.done = 'true';
  history.push({ role: 'assistant', content: text });
}

$<HTMLFormElement>('composer').addEventListener('submit', (event) => {
  event.preventDefault();
  const question = prompt.value.trim();
  if (!question || send.disabled) return;
  prompt.value = '';
  send.disabled = true;
  ask(question)
    .catch((err: Error) => {
      bubble('error', err.message);
    })
    .finally(() => {
      send.disabled = false;
      prompt.focus();
    });
});
prompt.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey) {
    event.preventDefault();
    $<HTMLFormElement>('composer').requestSubmit();
  }
});
$('reset').addEventListener('click', () => {
  history = [];
  chat.replaceChildren();
  if (image) image.pending = true;
  paint();
});
$<HTMLInputElement>('file').addEventListener('change', (event) => {
  const file = (event.target as HTMLInputElement).files?.[0];
  if (file) useFile(file);
});
const drop = $('drop');
drop.addEventListener('dragover', (event) => {
  event.preventDefault();
  drop.classList.add('over');
});
drop.addEventListener('dragleave', () => drop.classList.remove('over'));
drop.addEventListener('drop', (event) => {
  event.preventDefault();
  drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file) useFile(file);
});

loadCard().catch((err: Error) => {
  $('model-id').textContent = `model card unavailable: ${err.message}`;
});
