// An independent reader of a Polder topic: kafkajs (read_committed) reads `count` records and
// @confluentinc/schemaregistry's Protobuf deserializer decodes each value against the node's
// read-only schema endpoint (server TLS, no client certificate).
//   node read_topic.js <brokers> <topic> <count> <schema-endpoint-url> <ca.pem> <out.json>
'use strict';
const fs = require('fs');
const https = require('https');
const { Kafka, logLevel } = require('kafkajs');
const sr = require('@confluentinc/schemaregistry');

async function main() {
  const [brokers, topic, countText, url, ca, outPath] = process.argv.slice(2);
  const count = Number(countText);
  const agent = new https.Agent({ ca: fs.readFileSync(ca), servername: 'localhost' });
  const client = new sr.SchemaRegistryClient({ baseURLs: [url], createAxiosDefaults: { httpsAgent: agent } });
  const deserializer = new sr.ProtobufDeserializer(client, sr.SerdeType.VALUE, {});
  const kafka = new Kafka({ clientId: 'polder-independent-reader', brokers: brokers.split(','), logLevel: logLevel.ERROR });
  const consumer = kafka.consumer({ groupId: `reader-${process.pid}-${Date.now()}`, readUncommitted: false });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  const out = [];
  let failure = null;
  await new Promise((resolve) => {
    const timer = setTimeout(resolve, 60000);
    consumer.run({
      eachMessage: async ({ message }) => {
        try {
          const headers = {};
          for (const [k, v] of Object.entries(message.headers || {})) headers[k] = v.toString();
          const msg = await deserializer.deserialize(topic, message.value);
          out.push({
            key: message.key.toString(),
            ce_id: headers.ce_id,
            ce_type: headers.ce_type,
            type: msg.$typeName,
            counterId: msg.counterId,
            count: String(msg.count),
          });
        } catch (e) {
          failure = e;
        }
        if (out.length >= count || failure) {
          clearTimeout(timer);
          resolve();
        }
      },
    });
  });
  await consumer.disconnect();
  if (failure) throw failure;
  fs.writeFileSync(outPath, JSON.stringify(out));
}

main().catch((e) => { console.error((e && e.stack) || String(e)); process.exit(1); });
