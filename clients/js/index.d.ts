// TypeScript types of Vectron's JavaScript SDK (index.js).

export type Metric = 'l2' | 'ip' | 'cosine' | 'l1';
export type Role = 'admin' | 'write' | 'readonly';
export type Vector = ArrayLike<number> & Iterable<number>;
export type PointId = string | number;
export type Payload = Record<string, unknown>;
export type Point = { id: PointId; vector: Vector; payload?: Payload } | [PointId, Vector, Payload?];

export type Condition =
  | { key: string; match: string | number | boolean }
  | { key: string; range: { gt?: number; gte?: number; lt?: number; lte?: number } }
  | { key: string; any: Array<string | number | boolean> }
  | Filter;
export interface Filter { must?: Condition[]; should?: Condition[]; must_not?: Condition[] }

export interface SearchOptions {
  k?: number;
  filter?: Filter;
  efSearch?: number;
  withPayload?: boolean;
  withVector?: boolean;
  allowPartial?: boolean;
}
export interface SearchHit { id: string; distance: number; payload?: Payload; vector?: number[] }
export interface SearchResponse { results: SearchHit[]; partial: boolean; missing_shards?: number[] }

export interface CollectionInfo {
  id: number; name: string; dimension: number; metric: Metric; shards: number;
  replication_factor: number; index?: Record<string, number>; metadata?: Record<string, unknown>;
  created_at?: string; count?: number; count_partial?: boolean; shard_placements?: unknown[];
}
export interface ApiKey { id: string; name: string; role: Role; collections: string[]; key?: string; [k: string]: unknown }

export class VectronError extends Error {
  status: number; code: string; requestId: string | null; retryAfter: number | null;
}

export interface ClientOptions {
  url?: string; apiKey?: string; token?: string; timeoutMs?: number; retries?: number;
  /** PEM file of the CA to trust for https (Node.js); default $VECTRON_CA_FILE */
  caFile?: string;
}

export class Client {
  constructor(options?: ClientOptions);
  readonly url: string;
  request<T = any>(method: string, path: string, body?: unknown,
                   opts?: { retry?: boolean; auth?: boolean; contentType?: string }): Promise<T>;
  login(email: string, password: string): Promise<{ access_token: string; refresh_token: string; token_type: 'Bearer'; expires_in: number }>;
  logout(): Promise<unknown>;
  me(): Promise<Record<string, unknown>>;
  createKey(opts: { name: string; role?: Role; collections?: string[]; expiresAt?: string }): Promise<ApiKey>;
  listKeys(opts?: { allUsers?: boolean }): Promise<ApiKey[]>;
  revokeKey(id: string): Promise<{ id: string; revoked: boolean }>;
  rotateKey(id: string, graceSeconds?: number): Promise<{ id: string; key: string; previous_expires_at: string }>;
  createCollection(opts: { name: string; dimension: number; metric?: Metric; shards?: number;
                           replicationFactor?: number; m?: number; efConstruction?: number;
                           metadata?: Record<string, unknown> }): Promise<Collection>;
  listCollections(): Promise<CollectionInfo[]>;
  getCollection(name: string): Promise<CollectionInfo>;
  deleteCollection(name: string): Promise<unknown>;
  collection(name: string): Collection;
  health(): Promise<unknown>;
  ready(): Promise<unknown>;
  nodes(): Promise<unknown>;
  stats(): Promise<unknown>;
}

export class Collection {
  constructor(client: Client, name: string);
  readonly name: string;
  info(): Promise<CollectionInfo>;
  count(): Promise<number>;
  upsert(points: Iterable<Point>, opts?: { batchSize?: number }): Promise<number>;
  importPoints(points: Iterable<Point>): Promise<{ imported: number; errors: Array<{ line: number; message: string }> }>;
  get(ids: PointId[], opts?: { withVector?: boolean; withPayload?: boolean }): Promise<Array<{ id: string; payload?: Payload; vector?: number[] }>>;
  delete(opts: { ids: PointId[] } | { filter: Filter }): Promise<number>;
  search(vector: Vector, opts?: SearchOptions & { fullResponse?: false }): Promise<SearchHit[]>;
  search(vector: Vector, opts: SearchOptions & { fullResponse: true }): Promise<SearchResponse>;
  searchBatch(searches: Array<SearchOptions & { vector: Vector }>): Promise<SearchHit[][]>;
}
