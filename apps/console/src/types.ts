/** The shapes the console reads, from the services' contracts (types only: nothing of zod is bundled for them). */
import type { z } from 'zod';
import type { AgentChatsReply as AgentChats, agents, bridge, budgets, CreateSessionReply, documents, observability, WorkflowSummary } from '@tessera/contracts';

export type Session = observability.Session;
export type StoredEvent = observability.StoredEvent;
export type ObsServerMessage = observability.ObsServerMessage;
export type Agent = agents.Agent;
export type SessionInUse = agents.SessionInUse;
export type Doc = documents.Document;
export type ServersReply = bridge.ServersReply;
export type Workflow = z.infer<typeof WorkflowSummary>;
export type WorkflowsReply = Record<string, Workflow>;
/** `GET /api/chats/{app_id}/agents`: the app's active agents, each with the workflow name of a chat with it. */
export type AgentChatsReply = z.infer<typeof AgentChats>;
/** The broker's `POST /api/mozaiks/session` reply. */
export type SessionReply = z.infer<typeof CreateSessionReply>;
/** The runtime's `/api/budgets`: limits, and what is spent and left of them. */
export type Budget = budgets.Budget;
export type BudgetLimits = budgets.Limits;
export type BudgetsReply = budgets.BudgetsReply;
export type UserBudgetReply = budgets.UserBudgetReply;
