# Pinned versions and cache locations shared by setup.sh, test.sh, demo.sh and the Kafka launcher.
# Sourced, not executed.

# Apache Kafka runtime (broker, tools, log4j2 backend) resolved through deploy/kafka/pom.xml.
# Keep in step with <kafka.version> there and with deploy/kafka/jars.sha256.
POLDER_KAFKA_VERSION=4.1.1

# Everything fetched lives outside the clone, so fresh clones on the same machine reuse it.
POLDER_CACHE_ROOT=${POLDER_CACHE_ROOT:-/var/cache/polder}
POLDER_M2_REPO=${POLDER_CACHE_ROOT}/m2
POLDER_KAFKA_HOME=${POLDER_KAFKA_HOME:-${POLDER_CACHE_ROOT}/kafka-${POLDER_KAFKA_VERSION}}
# Kafka Streams of the same version (deploy/kafka-streams/pom.xml): the views' baseline.
POLDER_STREAMS_HOME=${POLDER_STREAMS_HOME:-${POLDER_CACHE_ROOT}/kafka-streams-${POLDER_KAFKA_VERSION}}

# The Debian packages of the container images (k8s/images/packages.lock), one .deb of each at
# the version Debian serves today (tools/images/fetch_debs.sh).
POLDER_DEBS_HOME=${POLDER_DEBS_HOME:-${POLDER_CACHE_ROOT}/debs}

# apt packages the build, the tests and the demo need (Debian 12).
POLDER_APT_PACKAGES=(
  bazel-bootstrap
  g++
  protobuf-compiler protobuf-compiler-grpc libprotobuf-dev libprotoc-dev
  libgrpc++-dev grpc-proto
  libabsl-dev
  librdkafka-dev
  libjemalloc-dev  # the services' allocator (common/memory, ADR 0023)
  libssl-dev openssl
  libgtest-dev libgmock-dev libbenchmark-dev
  libyaml-cpp-dev nlohmann-json3-dev libcpp-httplib-dev
  libevent-dev  # the HTTP listeners' event loop (common/http, ADR 0011)
  prometheus-cpp-dev
  python3-venv  # the Python test clients' venv (deploy/pip)
  prometheus  # promtool: tests check the /metrics exposition with it
  kcat
  curl
  python3
  procps psmisc
  clang-format-14  # test.sh's format check of every .cc/.h (.clang-format)
  clang-14  # test.sh's thread-safety check (clang++-14 -Wthread-safety; gcc builds)
  coinor-libclp-dev  # the views' publication gate: linear programs (ADR 0016 §10)
  chromium  # the national dashboard's browser tests (tests/dashboard, driven by playwright-core)
  fonts-dejavu-core  # text in Chromium's rendering of the dashboard (axe-core's contrast checks, screenshots)
  umoci  # packs the container images' OCI layouts (tools/images, ADR 0022 §2)
  podman runc  # runs the images in the tests (ADR 0022 §3)
)

# Tools that may come from elsewhere on a prepared image (a newer Node.js, another JDK): only
# installed from Debian when the command is missing. Format: command:package.
POLDER_APT_COMMANDS=(
  java:openjdk-17-jre-headless
  javac:openjdk-17-jdk-headless  # the Kafka Streams programs of the views' test and benchmark
  mvn:maven
  node:nodejs
  npm:npm
)
