"""values.schema.json of polder-node (written by `tools/k8s/charts.py schemas`)."""

from schema_dsl import (CIDR, DATASET_ID, PEER_ID, QUANTITY, any_obj, array, boolean, duration,
                        free_map, image, integer, metrics_section, network_peer_list, obj,
                        peer_selectors, placement, registry_peer, string, trust_section)

BYTES = "bytes"

SCHEMA = obj("Values of the polder-node chart: one city's node (ADR 0022 §4).", {
    "peerId": string("This city's peer id in the federation directory, e.g. groningen. Names "
                     "the release's objects (<peerId>-node).", pattern=PEER_ID),
    "fullnameOverride": string("Replaces <peerId>-node as the objects' name."),
    "replicaCount": integer("Node replicas (ADR 0021): at most kafka.keysPartitions; 2 or more "
                            "for failover.", minimum=1, maximum=64),
    "image": image("registry.example.nl/polder/polder-node"),
    "imagePullSecrets": array("Secrets for pulling the image.", {"type": "object"}),
    "kafka": obj("The city's Kafka (the polder-kafka chart, or the city's own).", {
        "bootstrapServers": string("host:port list of the brokers' mutual-TLS listener, e.g. "
                                   "groningen-kafka-bootstrap:9093.", min_len=1),
        "clusterCaSecret": string("Secret whose ca.crt signs the brokers' certificates (Strimzi: "
                                  "<cluster>-cluster-ca-cert).", min_len=1),
        "userSecret": string("Secret with the node's Kafka client certificate, user.crt and "
                             "user.key (Strimzi: the KafkaUser's Secret).", min_len=1),
        "keysPartitions": integer("Partitions of the idempotency-key topic; fixed once created, "
                                  "at least the replica count.", minimum=1, maximum=1024),
        "internalReplicationFactor": integer("Replication factor of the internal topics the "
                                             "node creates.", minimum=1),
        "productionReplicationFactor": integer("Below this a topic's replication factor is "
                                               "warned about at start.", minimum=1),
        "productionMinInsyncReplicas": integer("Below this a topic's min.insync.replicas is "
                                               "warned about at start.", minimum=1),
    }, required=["bootstrapServers", "clusterCaSecret", "userSecret"]),
    "registry": obj("The federation's schema registry.", {
        "address": string("host:port of the registry's gRPC listener (mutual TLS).", min_len=1),
        "peer": string("The registry's peer id in the directory.", pattern=PEER_ID),
    }, required=["address"]),
    "trust": trust_section(),
    "identity": obj("The node's federation identity, issued by polderctl, never by "
                    "cert-manager (the directory pins its key).", {
        "secretName": string("Secret with tls.crt, tls.key and ca.crt (the federation's bundle) "
                             "from `polderctl pki issue`.", min_len=1),
        "signingKeySecret": string("Secret with signing.key, the Ed25519 key the directory "
                                   "lists for this peer (signs receipts)."),
    }, required=["secretName"]),
    "ingest": obj("Publishing into the node: gateways and city applications.", {
        "trustDomain": string("SPIFFE trust domain of gateway certificates; empty: "
                              "<peerId>-ingest."),
        "clientCa": obj("The CA that issues gateway client certificates.", {
            "certManager": boolean("Make it with cert-manager (a self-signed root and a CA "
                                   "Issuer <fullname>-ingest for gateway certificates)."),
            "secretName": string("Otherwise: an existing Secret with ca.crt."),
            "duration": duration("Lifetime of the cert-manager CA."),
            "renewBefore": duration("Renewal margin of the cert-manager CA."),
        }),
        "crlConfigMap": string("ConfigMap with the ingest CA's CRLs (no key: none revoked).",
                               min_len=1),
        "serverCertificate": obj("The ingest and schema listeners' server certificate, from "
                                 "cert-manager for the city's public names; disabled: the "
                                 "federation identity.", {
            "enabled": boolean("Issue it with cert-manager."),
            "dnsNames": array("The names gateways connect to.", string("A DNS name."),
                              unique=True),
            "issuerRef": obj("The issuer of the city's public certificates.", {
                "name": string("Issuer or ClusterIssuer name."),
                "kind": string("Its kind.", enum=["Issuer", "ClusterIssuer"]),
            }),
            "duration": duration("Certificate lifetime."),
            "renewBefore": duration("Renewal margin."),
        }),
        "identities": array("Who may publish what.", obj("An ingest identity.", {
            "id": string("Peer id in its certificate (spiffe://<trustDomain>/peer/<id>).",
                         pattern=PEER_ID),
            "datasets": array("Dataset ids it may publish, or [\"*\"].", string("A dataset id."),
                              min_items=1),
            "tokenSecret": string("Secret with key `token`: authenticates by bearer token "
                                  "instead of a certificate."),
        }, required=["id", "datasets"])),
        "limits": obj("Ingest bounds (they size the memory request).", {
            "maxRecordBytes": integer("Key + headers + value of one record.", minimum=256),
            "maxBatchBytes": integer("One batch (request); at most 4032 KiB.", minimum=1024,
                                     maximum=4128768),
            "maxBatchRecords": integer("Records in one batch.", minimum=1),
            "maxInflightBytes": integer("Request bytes in flight in one replica; at least twice "
                                        "maxBatchBytes.", minimum=2048),
        }),
        "idempotencyWindow": duration("How long an idempotency key is remembered."),
    }, required=["crlConfigMap"]),
    "datasets": array("The city's own datasets (topics <peerId>.<id>).", obj("A dataset.", {
        "id": string("<domain>.<name>, e.g. mobility.bike-counts.", pattern=DATASET_ID),
        "subject": string("Its schema subject (the message's full name).", min_len=1),
        "partitions": integer("Topic partitions.", minimum=1),
        "replicationFactor": integer("Topic replication factor (default 3).", minimum=1),
        "retention": duration("How long records are kept (default 720h)."),
        "epoch": string("Change when the topic is deleted and re-created (default \"1\")."),
        "description": string("Shown in the catalogue."),
        "licence": string("e.g. CC-BY-4.0."),
        "ownerContact": string("Who answers for the data."),
    }, required=["id", "subject", "partitions"])),
    "federation": obj("Sharing datasets with peer cities and mirroring theirs.", {
        "name": string("The federation's name (the directory's).", pattern=PEER_ID),
        "enabled": boolean("Serve and subscribe (the federation port, contracts, audit)."),
        "contractsSecret": string("Secret with the contracts both parties signed, one "
                                  "<contract>.json per key."),
        "revocationsConfigMap": string("ConfigMap with signed revocations (may be empty)."),
        "peers": array("CIDRs of peer cities' federation endpoints; empty: any address outside "
                       "the cluster (mutual TLS and the directory are the control).",
                       string("A CIDR.", pattern=CIDR)),
        "peerPorts": array("Ports of peers' federation endpoints for egress; empty: any.",
                           integer("A port.", minimum=1, maximum=65535)),
        "receiptInterval": duration("How often signed receipts are exchanged."),
        "limits": obj("Per-stream and per-peer bounds (they size the memory request).", {
            "maxStreamsPerPeer": integer("Streams one peer may hold, over all replicas.",
                                         minimum=1),
            "maxBatchBytes": integer("One federation batch.", minimum=1024),
            "maxUnacknowledgedBytes": integer("Flow-control window per stream.", minimum=1024),
            "sourcePrefetchBytes": integer("Source prefetch per reading consumer.",
                                           minimum=1024),
            "fanoutTailBytes": integer("Shared tail per dataset.", minimum=0),
            "fanoutMaxCatchupReaders": integer("Catch-up readers at once.", minimum=1),
        }),
        "subscriptions": array("Datasets (or views) mirrored from other cities.", obj(
            "A subscription.", {
                "provider": string("The providing peer.", pattern=PEER_ID),
                "endpoint": string("Its federation host:port.", min_len=3),
                "dataset": string("The dataset id.", pattern=DATASET_ID),
                "contract": string("The contract id.", min_len=1),
                "partitions": integer("The source's partitions (not for a view).", minimum=1),
                "view": string("Mirror this aggregate view of the dataset instead."),
                "replicationFactor": integer("Mirror topic replication factor (default 3).",
                                             minimum=1),
                "start": string("earliest, latest or an RFC 3339 time (no cursor yet)."),
                "purgeOnRevocation": boolean("Delete the mirror's records on revocation."),
            }, required=["provider", "endpoint", "dataset", "contract"])),
    }),
    "views": obj("Aggregate views of the city's own datasets (ADR 0016).", {
        "keySecret": string("Secret with one 32-byte key per view set, key <dataset>.key, the "
                            "same for every replica; back it up (a lost key resets the set)."),
        "sets": array("The node's views: section as written in services/node/README.md "
                      "(checked by the node at start).", any_obj("A view set.")),
    }),
    "replicas": obj("Replica group timing (ADR 0021).", {
        "sessionTimeout": duration("A replica silent this long loses its partitions and roles "
                                   "(6s-10s)."),
        "heartbeatInterval": duration("Group heartbeat."),
        "certManager": boolean("The internal port's identity from a CA of this release alone "
                               "(cert-manager); false: the federation identity."),
        "certificateDuration": duration("Lifetime of the replicas' certificate (short: no CRL "
                                        "is published for it)."),
        "certificateRenewBefore": duration("Its renewal margin."),
    }),
    "drainTimeout": duration("On SIGTERM: finish requests in flight within this."),
    "terminationGracePeriodSeconds": integer("More than drainTimeout plus a commit.",
                                             minimum=10),
    "minReadySeconds": integer("A new pod counts as available after this.", minimum=0),
    "probes": obj("Probe settings.", {
        "startupFailureThreshold": integer("startupProbe tries, 5 s apart (topic checks and "
                                           "recovery at first start).", minimum=1),
    }),
    "service": obj("The L4 Services (externalTrafficPolicy: Local: per-source limits need "
                   "the client's address).", {
        "ingest": obj("The ingest Service (gRPC, HTTPS, schemas).", {
            "type": string("LoadBalancer or NodePort (L4); ClusterIP only behind the city's "
                           "proxy, with perSourceLimits false.",
                           enum=["LoadBalancer", "NodePort", "ClusterIP"]),
            "perSourceLimits": boolean("false: the HTTPS ingest and schema listeners apply no "
                                       "per-source connection cap (every client has the "
                                       "proxy's address); logged at start; the listener-wide "
                                       "caps and per-identity limits hold."),
            "annotations": free_map("Annotations (e.g. the cloud's load balancer settings)."),
            "loadBalancerSourceRanges": array("CIDRs allowed at the load balancer.",
                                              string("A CIDR.", pattern=CIDR)),
        }),
        "federation": obj("The federation Service (mutual TLS ends in the pod; never behind "
                          "a proxy).", {
            "type": string("LoadBalancer or NodePort (L4).", enum=["LoadBalancer", "NodePort"]),
            "annotations": free_map("Annotations (e.g. the cloud's load balancer settings)."),
            "loadBalancerSourceRanges": array("CIDRs allowed at the load balancer.",
                                              string("A CIDR.", pattern=CIDR)),
        }),
    }),
    "persistence": obj("The state volume per replica: schema cache, last good directory and "
                       "its rollback serial.", {
        "size": string("Volume size.", pattern=QUANTITY, min_len=1),
        "storageClass": string("StorageClass; empty: the cluster's default."),
    }),
    "resources": obj("Resources; memory follows the README's formula unless set.", {
        "cpu": obj("CPU.", {
            "request": string("CPU request.", pattern=QUANTITY),
            "limit": string("CPU limit; empty (default): none.", pattern=QUANTITY),
        }),
        "memory": obj("Memory overrides.", {
            "request": string("Replaces the formula's request.", pattern=QUANTITY),
            "limit": string("Replaces the formula's limit.", pattern=QUANTITY),
        }),
    }),
    "topologySpread": obj("How replicas spread.", {
        "zone": string("Over zones.", enum=["ScheduleAnyway", "DoNotSchedule"]),
        "host": string("Over hosts.", enum=["ScheduleAnyway", "DoNotSchedule"]),
    }),
    "networkPolicy": obj("Default-deny NetworkPolicy with the node's allows.", {
        "enabled": boolean("Create it."),
        "clusterCidrs": array("The cluster's pod and service CIDRs, excluded from 'outside the "
                              "cluster'.", string("A CIDR.", pattern=CIDR), min_items=1),
        "ingestFrom": network_peer_list("NetworkPolicy peers allowed to ingest; empty: any."),
        "registry": registry_peer(),
        **peer_selectors(),
    }),
    "metrics": metrics_section({
        "mirrorLagSeconds": integer("PolderMirrorLagging threshold.", minimum=1),
        "expiryWarningSeconds": integer("PolderCredentialExpiring threshold.", minimum=1),
    }),
    "podLabels": free_map("Extra pod labels."),
    "priorityClassName": string("PriorityClass of the pods."),
    **placement(),
}, required=["peerId", "image", "kafka", "registry", "trust", "identity", "ingest"])
