/**
 * Renderers for UI tool calls by component id (document 003 §8). The core does not know how a
 * host draws (React element, native view, terminal line): R is whatever the host's renderers make.
 * An unknown component gets the fallback, never a throw: a workflow may add components before
 * every client ships a renderer for them.
 */
import type { TimelineDataOf } from './events';

export type ToolCall = TimelineDataOf<'chat.tool_call'>;
export type ToolRenderer<R> = (call: ToolCall, answer: (response: Record<string, unknown>) => void) => R;

export class UiToolRegistry<R> {
  private readonly renderers = new Map<string, ToolRenderer<R>>();

  /** `fallback` draws an unknown component; it should show the payload's prompt and say it is unsupported. */
  constructor(private readonly fallback: ToolRenderer<R>) {}

  register(component: string, renderer: ToolRenderer<R>): this {
    this.renderers.set(component, renderer);
    return this;
  }

  has(component: string): boolean {
    return this.renderers.has(component);
  }

  /** Draws a tool call; a renderer that throws is replaced by the fallback rather than taking the chat down. */
  render(call: ToolCall, answer: (response: Record<string, unknown>) => void): R {
    const r = this.renderers.get(call.component);
    if (r) {
      try {
        return r(call, answer);
      } catch (err) {
        console.error(`tessera client: renderer for ${call.component} failed`, err);
      }
    }
    return this.fallback(call, answer);
  }

  /** A composer tool takes the user's next message as its answer: no second text box to draw. */
  static routesComposer(call: ToolCall): boolean {
    return call.awaiting_response && call.display === 'composer';
  }
}

/** A text line for the fallback: the tool's question when it has one. */
export function fallbackText(call: ToolCall): string {
  const q = call.payload.question ?? call.payload.prompt ?? call.payload.message;
  const prompt = typeof q === 'string' ? q : `The agent asked for "${call.component}".`;
  return `${prompt} (this app cannot show ${call.component}${call.awaiting_response ? '; answer in the message box' : ''})`;
}
