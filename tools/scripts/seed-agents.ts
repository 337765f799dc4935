/**
 * The blueprints the example workflows run on (dev-agents.json: `support-agent` for support_desk),
 * created in an app through the agent manager's own API, as an operator would. Idempotent, and an
 * operator's change stands: an agent the app has ever had (edited, deactivated, even deleted: its
 * versions stay) is left as it is; only a name the app never had is created.
 *
 *   node --import tsx tools/scripts/seed-agents.ts <agent manager URL> <app>    (TOKEN: an operator of the app)
 *
 * `npm start` calls seedAgents once the services are up (start.ts).
 */
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

export interface SeedAgent {
  name: string;
  description: string;
  system_prompt: string;
}

export const DEV_AGENTS_FILE = resolve(__dirname, 'dev-agents.json');

export async function seedAgents(o: { agentsUrl: string; token: string; app: string; file?: string }): Promise<{ created: string[]; kept: string[] }> {
  const list = JSON.parse(readFileSync(o.file ?? DEV_AGENTS_FILE, 'utf8')) as SeedAgent[];
  const headers = { authorization: `Bearer ${o.token}`, 'x-tessera-app': o.app, 'content-type': 'application/json' };
  const base = o.agentsUrl.replace(/\/+$/, '');
  const out = { created: [] as string[], kept: [] as string[] };
  for (const agent of list) {
    // Its history answers for a deleted agent too: the app has had it, and the operator's delete stands.
    const history = await fetch(`${base}/agents/${encodeURIComponent(agent.name)}/versions`, { headers });
    if (history.status === 200) {
      out.kept.push(agent.name);
      continue;
    }
    if (history.status !== 404) throw new Error(`agent manager: versions of ${agent.name} answered ${history.status}: ${await history.text()}`);
    const made = await fetch(`${base}/agents`, { method: 'POST', headers, body: JSON.stringify(agent) });
    // 409: made meanwhile (another start): kept as it is.
    if (made.status === 409) out.kept.push(agent.name);
    else if (made.status === 201) out.created.push(agent.name);
    else throw new Error(`agent manager: creating ${agent.name} answered ${made.status}: ${await made.text()}`);
  }
  return out;
}

if (require.main === module) {
  const [url, app] = process.argv.slice(2);
  if (!url || !app || !process.env.TOKEN) {
    process.stderr.write('usage: TOKEN=<operator token> node --import tsx tools/scripts/seed-agents.ts <agent manager URL> <app>\n');
    process.exit(2);
  }
  seedAgents({ agentsUrl: url, token: process.env.TOKEN, app }).then(
    (r) => process.stdout.write(`${JSON.stringify(r)}\n`),
    (e: Error) => {
      process.stderr.write(`${e.message}\n`);
      process.exit(1);
    },
  );
}
