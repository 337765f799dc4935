import { useCallback, useEffect, useRef, useState } from 'react';
import { api, authHeaders, errorOf, get, messageOf, qs } from '../api';
import type { Operator } from '../App';
import { ErrorNote } from '../ErrorBoundary';
import { ago, bytes } from '../format';
import type { Doc } from '../types';
import { ConfirmButton } from './Sessions';

interface Upload {
  id: number;
  name: string;
  size: number;
  sent: number;
  state: 'uploading' | 'done' | 'failed';
  error?: string;
}

let uploadIds = 0;

/** XMLHttpRequest, not fetch: only it reports the upload's progress. */
function uploadFile(file: File, fields: Record<string, string>, onProgress: (sent: number) => void): Promise<Doc> {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', '/api/documents');
    for (const [k, v] of Object.entries(authHeaders())) xhr.setRequestHeader(k, v);
    xhr.upload.onprogress = (e) => onProgress(e.loaded);
    xhr.onerror = () => reject(new Error('the gateway is not reachable (network error)'));
    xhr.onload = () => {
      if (xhr.status >= 200 && xhr.status < 300) return resolve(JSON.parse(xhr.responseText) as Doc);
      void errorOf(new Response(xhr.responseText, { status: xhr.status, statusText: xhr.statusText })).then(reject);
    };
    const form = new FormData();
    for (const [k, v] of Object.entries(fields)) if (v) form.append(k, v);
    form.append('file', file, file.name);
    xhr.send(form);
  });
}

export function DocumentsPage({ op }: { op: Operator }) {
  const [docs, setDocs] = useState<Doc[] | null>(null);
  const [cursor, setCursor] = useState<string | null>(null);
  const [tags, setTags] = useState<{ name: string; count: number }[]>([]);
  const [tag, setTag] = useState<string | null>(null);
  const [q, setQ] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [uploads, setUploads] = useState<Upload[]>([]);
  const [newTags, setNewTags] = useState('');
  const [newDescription, setNewDescription] = useState('');
  const [dragging, setDragging] = useState(false);
  const input = useRef<HTMLInputElement>(null);

  const reload = useCallback(async () => {
    try {
      const [list, t] = await Promise.all([
        get<{ documents: Doc[]; next_cursor: string | null }>(`/api/documents${qs({ app_id: op.namedApp, tag, q, limit: 50 })}`),
        get<{ tags: { name: string; count: number }[] }>(`/api/documents/tags${qs({ app_id: op.namedApp })}`),
      ]);
      setDocs(list.documents);
      setCursor(list.next_cursor);
      setTags(t.tags);
    } catch (e) {
      setError(`Could not list documents: ${messageOf(e)}`);
    }
  }, [op.namedApp, tag, q]);
  useEffect(() => {
    const t = setTimeout(() => void reload(), q ? 300 : 0);
    return () => clearTimeout(t);
  }, [reload, q]);

  const more = async () => {
    try {
      const list = await get<{ documents: Doc[]; next_cursor: string | null }>(`/api/documents${qs({ app_id: op.namedApp, tag, q, limit: 50, cursor })}`);
      setDocs((d) => [...(d ?? []), ...list.documents]);
      setCursor(list.next_cursor);
    } catch (e) {
      setError(`Could not list documents: ${messageOf(e)}`);
    }
  };

  const upload = async (files: FileList | File[]) => {
    setError(null);
    const tagList = newTags
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);
    await Promise.all(
      [...files].map(async (file) => {
        const id = ++uploadIds;
        const patch = (p: Partial<Upload>) => setUploads((u) => u.map((x) => (x.id === id ? { ...x, ...p } : x)));
        setUploads((u) => [{ id, name: file.name, size: file.size, sent: 0, state: 'uploading' as const }, ...u].slice(0, 10));
        try {
          await uploadFile(file, { app_id: op.appId, tags: tagList.join(','), description: newDescription }, (sent) => patch({ sent }));
          patch({ state: 'done', sent: file.size });
        } catch (e) {
          patch({ state: 'failed', error: messageOf(e) });
        }
      }),
    );
    await reload();
  };

  const download = async (d: Doc) => {
    try {
      const res = await fetch(`/api/documents/${d.id}`, { headers: authHeaders() });
      if (!res.ok) throw await errorOf(res);
      const url = URL.createObjectURL(await res.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = d.filename;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (e) {
      setError(`Could not download “${d.filename}”: ${messageOf(e)}`);
    }
  };

  const remove = async (d: Doc) => {
    try {
      await api('DELETE', `/api/documents/${d.id}`);
      await reload();
    } catch (e) {
      setError(`Could not delete “${d.filename}”: ${messageOf(e)}`);
    }
  };

  return (
    <section className="documents">
      <h1>Documents</h1>
      <div
        className={`dropzone ${dragging ? 'dragging' : ''}`}
        data-testid="dropzone"
        onDragOver={(e) => (e.preventDefault(), setDragging(true))}
        onDragLeave={() => setDragging(false)}
        onDrop={(e) => {
          e.preventDefault();
          setDragging(false);
          if (e.dataTransfer.files.length) void upload(e.dataTransfer.files);
        }}
      >
        <p>
          Drop files here, or <button onClick={() => input.current?.click()}>choose files</button>
          <input ref={input} type="file" multiple hidden data-testid="file-input" onChange={(e) => e.target.files?.length && void upload(e.target.files).then(() => (e.target.value = ''))} />
        </p>
        <div className="row">
          <input aria-label="tags for new uploads" placeholder="tags for new uploads (comma separated)" value={newTags} onChange={(e) => setNewTags(e.target.value)} />
          <input aria-label="description for new uploads" placeholder="description" value={newDescription} onChange={(e) => setNewDescription(e.target.value)} />
          <span className="muted small">into app {op.appId}</span>
        </div>
        {uploads.map((u) => (
          <div key={u.id} className={`upload ${u.state}`} data-upload={u.name}>
            <span>{u.name}</span> <progress max={u.size || 1} value={u.sent} /> <span className="small">{u.state === 'uploading' ? `${Math.round((100 * u.sent) / (u.size || 1))}%` : u.state}</span>
            {u.error && <span className="error-text"> {u.error}</span>}
          </div>
        ))}
      </div>
      <ErrorNote error={error} onDismiss={() => setError(null)} />
      <div className="tags" data-testid="tags">
        <button className={tag === null ? 'chip active' : 'chip'} onClick={() => setTag(null)}>
          all
        </button>
        {tags.map((t) => (
          <button key={t.name} className={tag === t.name ? 'chip active' : 'chip'} data-tag={t.name} onClick={() => setTag(tag === t.name ? null : t.name)}>
            {t.name} <span className="count">{t.count}</span>
          </button>
        ))}
        <input aria-label="search documents" placeholder="search filename or description" value={q} onChange={(e) => setQ(e.target.value)} />
      </div>
      {docs === null && !error && <p className="muted">Loading…</p>}
      {docs && (
        <table className="list" data-testid="documents-table">
          <thead>
            <tr>
              <th>File</th>
              <th>Tags</th>
              <th>Description</th>
              <th className="num">Size</th>
              <th>Type</th>
              <th>Uploaded</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {docs.map((d) => (
              <DocRow key={d.id} doc={d} onSaved={reload} onDownload={() => void download(d)} onDelete={() => void remove(d)} onError={setError} />
            ))}
            {docs.length === 0 && (
              <tr>
                <td colSpan={7} className="muted">
                  No documents{tag ? ` tagged “${tag}”` : ''}.
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {cursor && <button onClick={() => void more()}>More…</button>}
    </section>
  );
}

function DocRow({ doc, onSaved, onDownload, onDelete, onError }: { doc: Doc; onSaved: () => Promise<void>; onDownload: () => void; onDelete: () => void; onError: (e: string) => void }) {
  const [editing, setEditing] = useState(false);
  const [tags, setTags] = useState(doc.tags.join(', '));
  const [description, setDescription] = useState(doc.description ?? '');
  const save = async () => {
    try {
      const tagList = tags
        .split(',')
        .map((t) => t.trim())
        .filter(Boolean);
      await api('PATCH', `/api/documents/${doc.id}`, { tags: tagList, description: description.trim() ? description : null });
      setEditing(false);
      await onSaved();
    } catch (e) {
      onError(`Could not save “${doc.filename}”: ${messageOf(e)}`);
    }
  };
  return (
    <tr data-document={doc.filename}>
      <td className="name">{doc.filename}</td>
      {editing ? (
        <>
          <td>
            <input aria-label="tags" value={tags} onChange={(e) => setTags(e.target.value)} />
          </td>
          <td>
            <input aria-label="description" value={description} onChange={(e) => setDescription(e.target.value)} />
          </td>
        </>
      ) : (
        <>
          <td>
            {doc.tags.map((t) => (
              <span key={t} className="chip static">
                {t}
              </span>
            ))}
          </td>
          <td>{doc.description ?? ''}</td>
        </>
      )}
      <td className="num">{bytes(doc.size)}</td>
      <td className="small">{doc.content_type}</td>
      <td title={doc.created_at}>
        {ago(doc.created_at)} <span className="muted small">by {doc.uploaded_by}</span>
      </td>
      <td className="actions">
        {editing ? (
          <>
            <button onClick={() => void save()}>Save</button>
            <button onClick={() => setEditing(false)}>Cancel</button>
          </>
        ) : (
          <>
            <button onClick={() => setEditing(true)}>Edit</button>
            <button onClick={onDownload}>Download</button>
            <ConfirmButton label="Delete" onConfirm={onDelete} />
          </>
        )}
      </td>
    </tr>
  );
}
