import { Component, type ReactNode } from 'react';

/** A page that throws while rendering shows what went wrong instead of a blank screen. */
export class ErrorBoundary extends Component<{ children: ReactNode; resetKey?: string }, { error: Error | null }> {
  override state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override componentDidUpdate(prev: { resetKey?: string }) {
    if (prev.resetKey !== this.props.resetKey && this.state.error) this.setState({ error: null });
  }

  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="error-page" role="alert">
        <h2>This page failed</h2>
        <p>{this.state.error.message || String(this.state.error)}</p>
        <button onClick={() => this.setState({ error: null })}>Try again</button> <button onClick={() => location.reload()}>Reload the console</button>
      </div>
    );
  }
}

/** A server error in words, or nothing. */
export function ErrorNote({ error, onDismiss }: { error: string | null; onDismiss?: () => void }) {
  if (!error) return null;
  return (
    <div className="error" role="alert">
      {error}
      {onDismiss && (
        <button className="link" onClick={onDismiss} aria-label="dismiss">
          ×
        </button>
      )}
    </div>
  );
}
