// Drives third-party schema-registry clients against a running polder-registry (over mTLS).
//   node interop.js produce <url> <cert> <key> <ca> <descriptor-set> <out.json>
//   node interop.js consume <url> <cert> <key> <ca> <frame-hex> <out.json>
//   node interop.js legacy  <url> <cert> <key> <ca> <legacy.proto> <out.json>
//   node interop.js reads   <url> <cert> <key> <ca> <subject> <out.json>   (every read call)
'use strict';
const fs = require('fs');
const https = require('https');

async function main() {
  const [mode, url, cert, key, ca, arg, outPath] = process.argv.slice(2);
  const agent = url.startsWith('https:') ? new https.Agent({
    cert: fs.readFileSync(cert), key: fs.readFileSync(key), ca: fs.readFileSync(ca),
    servername: 'localhost',
  }) : undefined;
  let out = {};
  if (mode === 'legacy') {
    // @kafkajs/confluent-schema-registry: writes Protobuf frames without message indexes.
    const { SchemaRegistry, SchemaType } = require('@kafkajs/confluent-schema-registry');
    const reg = new SchemaRegistry(agent ? { host: url, agent } : { host: url });
    const { id } = await reg.register(
        { type: SchemaType.PROTOBUF, schema: fs.readFileSync(arg, 'utf8') },
        { subject: 'polder.interop.legacy.v1.Legacy' });
    const frame = await reg.encode(id, { name: 'kafkajs', n: 5 });
    out = { id, frame: frame.toString('hex') };
  } else {
    const sr = require('@confluentinc/schemaregistry');
    const { createFileRegistry, fromBinary, create } = require('@bufbuild/protobuf');
    const { FileDescriptorSetSchema } = require('@bufbuild/protobuf/wkt');
    const client = new sr.SchemaRegistryClient(
        agent ? { baseURLs: [url], createAxiosDefaults: { httpsAgent: agent } } : { baseURLs: [url] });
    if (mode === 'produce') {
      const registry = createFileRegistry(fromBinary(FileDescriptorSetSchema, fs.readFileSync(arg)));
      const ser = new sr.ProtobufSerializer(client, sr.SerdeType.VALUE, {
        autoRegisterSchemas: true, registry,
        subjectNameStrategyType: sr.SubjectNameStrategyType.RECORD,
      });
      const counter = create(registry.getMessage('polder.interop.bikes.v1.CounterInfo'),
                             { counterId: 'c-7', location: { lat: 53.2, lon: 6.5 } });
      const reading = create(registry.getMessage('polder.interop.bikes.v1.BikeCount.Reading'),
                             { seq: 42n, note: 'from js' });
      const topic = 'groningen.mobility.bike-counts';
      out.counter = (await ser.serialize(topic, counter)).toString('hex');
      out.reading = (await ser.serialize(topic, reading)).toString('hex');
      out.subjects = await client.getAllSubjects();
    } else if (mode === 'reads') {
      // Every read call of SchemaRegistryClient 1.10.1, against `subject` (registered before):
      // each result, or the REST error the client made of the answer (status, error code).
      const subject = arg;
      const latest = await client.getLatestSchemaMetadata(subject);
      const schema = { schemaType: 'PROTOBUF', schema: latest.schema, references: latest.references };
      const calls = {
        getBySubjectAndId: () => client.getBySubjectAndId(subject, latest.id),
        getByGuid: () => client.getByGuid('00000000-0000-0000-0000-000000000000'),
        getId: () => client.getId(subject, schema),
        getLatestSchemaMetadata: () => client.getLatestSchemaMetadata(subject),
        getSchemaMetadata: () => client.getSchemaMetadata(subject, 1),
        getLatestWithMetadata: () => client.getLatestWithMetadata(subject, { owner: 'groningen' }),
        getAllVersions: () => client.getAllVersions(subject),
        getVersion: () => client.getVersion(subject, schema),
        getAllSubjects: () => client.getAllSubjects(),
        testSubjectCompatibility: () => client.testSubjectCompatibility(subject, schema),
        testCompatibility: () => client.testCompatibility(subject, 1, schema),
        getCompatibility: () => client.getCompatibility(subject),
        getDefaultCompatibility: () => client.getDefaultCompatibility(),
        getConfig: () => client.getConfig(subject),
        getDefaultConfig: () => client.getDefaultConfig(),
        getAssociationsByResourceName: () => client.getAssociationsByResourceName('groningen.mobility.bike-counts', '-', 'topic', ['value'], null, 0, -1),
      };
      for (const [name, call] of Object.entries(calls)) {
        try {
          const value = await call();
          out[name] = { ok: true, value: JSON.parse(JSON.stringify(value === undefined ? null : value,
                                                                  (k, v) => typeof v === 'bigint' ? String(v) : v)) };
        } catch (e) {
          out[name] = { ok: false, status: e.status === undefined ? null : e.status,
                        errorCode: e.errorCode === undefined ? null : e.errorCode, message: String(e.message) };
        }
      }
    } else if (mode === 'consume') {
      const de = new sr.ProtobufDeserializer(client, sr.SerdeType.VALUE, {});
      const msg = await de.deserialize('groningen.mobility.bike-counts', Buffer.from(arg, 'hex'));
      out = { typeName: msg.$typeName, seq: String(msg.seq), note: msg.note };
    } else {
      throw new Error('unknown mode ' + mode);
    }
  }
  fs.writeFileSync(outPath, JSON.stringify(out));
}

main().catch((e) => { console.error((e && e.stack) || String(e)); process.exit(1); });
