// The generated hookstream.v1 messages, enums and service descriptors
// (from gen/ts, copied here by build.mjs).
export * from "./gen/hookstream/v1/event_pb.js";
export * from "./gen/hookstream/v1/closer_pb.js";
export * from "./gen/hookstream/v1/pipedrive_pb.js";
export * from "./gen/hookstream/v1/clinchpad_pb.js";
export * from "./gen/hookstream/v1/event_service_pb.js";
export * from "./gen/hookstream/v1/ingest_service_pb.js";
export * from "./gen/hookstream/v1/quarantine_service_pb.js";
export * from "./gen/hookstream/v1/endpoint_service_pb.js";
export * from "./gen/hookstream/v1/admin_service_pb.js";
export * from "./gen/hookstream/v1/source_service_pb.js";
