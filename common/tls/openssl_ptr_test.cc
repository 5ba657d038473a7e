#include "common/tls/openssl_ptr.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/sha.h>

#include <ctime>
#include <string>
#include <utility>

#include "gtest/gtest.h"

namespace polder {
namespace ssl {
namespace {

static_assert(sizeof(UniquePtr<X509>) == sizeof(X509*), "deleters are stateless");
static_assert(sizeof(UniquePtr<STACK_OF(X509)>) == sizeof(STACK_OF(X509) *),
              "deleters are stateless");

// OpenSSL calls the ex_data free callback of every registered index when it frees an object
// that has ex_data (when its last reference goes). Objects marked with a counter count their
// own frees, which shows whether a deleter freed them, and how often.
void CountFree(void* /*parent*/, void* counter, CRYPTO_EX_DATA* /*ad*/, int /*idx*/, long /*argl*/,
               void* /*argp*/) {
  if (counter != nullptr) ++*static_cast<int*>(counter);
}

void Mark(X509* x, int* counter) {
  static const int index = X509_get_ex_new_index(0, nullptr, nullptr, nullptr, CountFree);
  ASSERT_EQ(X509_set_ex_data(x, index, counter), 1);
}
void Mark(BIO* b, int* counter) {
  static const int index = BIO_get_ex_new_index(0, nullptr, nullptr, nullptr, CountFree);
  ASSERT_EQ(BIO_set_ex_data(b, index, counter), 1);
}
void Mark(EVP_PKEY* k, int* counter) {
  static const int index = EVP_PKEY_get_ex_new_index(0, nullptr, nullptr, nullptr, CountFree);
  ASSERT_EQ(EVP_PKEY_set_ex_data(k, index, counter), 1);
}
void Mark(SSL_CTX* c, int* counter) {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, CountFree);
  ASSERT_EQ(SSL_CTX_set_ex_data(c, index, counter), 1);
}
void Mark(SSL* s, int* counter) {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, CountFree);
  ASSERT_EQ(SSL_set_ex_data(s, index, counter), 1);
}
void Mark(X509_STORE* s, int* counter) {
  static const int index = X509_STORE_get_ex_new_index(0, nullptr, nullptr, nullptr, CountFree);
  ASSERT_EQ(X509_STORE_set_ex_data(s, index, counter), 1);
}
void Mark(X509_STORE_CTX* c, int* counter) {
  static const int index = X509_STORE_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, CountFree);
  ASSERT_EQ(X509_STORE_CTX_set_ex_data(c, index, counter), 1);
}

// A self-signed certificate with a fresh P-256 key and the given common name.
UniquePtr<X509> SelfSigned(const std::string& cn) {
  UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  UniquePtr<X509> cert(X509_new());
  if (key == nullptr || cert == nullptr) return nullptr;
  X509_NAME* name = X509_get_subject_name(cert.get());  // Owned by the certificate.
  if (X509_NAME_add_entry_by_NID(name, NID_commonName, MBSTRING_UTF8,
                                 reinterpret_cast<const unsigned char*>(cn.data()),
                                 static_cast<int>(cn.size()), -1, 0) != 1 ||
      X509_set_issuer_name(cert.get(), name) != 1 ||
      X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60) == nullptr ||
      X509_gmtime_adj(X509_getm_notAfter(cert.get()), 3600) == nullptr ||
      X509_set_pubkey(cert.get(), key.get()) != 1 ||
      X509_sign(cert.get(), key.get(), EVP_sha256()) <= 0) {
    return nullptr;
  }
  return cert;
}

std::string CommonName(X509* cert) {
  char buf[256] = {0};
  X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, buf, sizeof buf);
  return buf;
}

TEST(OpenSslPtrTest, FreesTheObjectWhenItGoesOutOfScope) {
  int freed = 0;
  {
    UniquePtr<X509> cert = SelfSigned("scoped");
    ASSERT_NE(cert, nullptr);
    Mark(cert.get(), &freed);
    EXPECT_EQ(CommonName(cert.get()), "scoped");
    EXPECT_EQ(freed, 0);
  }
  EXPECT_EQ(freed, 1);
}

TEST(OpenSslPtrTest, ReleaseHandsOwnershipOverAndResetFrees) {
  int freed = 0;
  UniquePtr<X509> cert = SelfSigned("released");
  ASSERT_NE(cert, nullptr);
  Mark(cert.get(), &freed);
  X509* raw = cert.get();
  EXPECT_EQ(cert.release(), raw);
  EXPECT_EQ(cert.get(), nullptr);
  EXPECT_EQ(freed, 0);
  EXPECT_EQ(CommonName(raw), "released");  // Still alive: nobody freed it.

  UniquePtr<X509> again(raw);
  UniquePtr<X509> moved = std::move(again);
  EXPECT_EQ(again.get(), nullptr);  // NOLINT(bugprone-use-after-move): checking the move.
  EXPECT_EQ(moved.get(), raw);
  EXPECT_EQ(freed, 0);
  moved.reset();
  EXPECT_EQ(freed, 1);
  moved.reset();  // Resetting an empty pointer frees nothing.
  EXPECT_EQ(freed, 1);
}

TEST(OpenSslPtrTest, EachPointerReleasesOneReference) {
  int freed = 0;
  UniquePtr<X509> first = SelfSigned("shared");
  ASSERT_NE(first, nullptr);
  Mark(first.get(), &freed);
  ASSERT_EQ(X509_up_ref(first.get()), 1);
  UniquePtr<X509> second(first.get());
  first.reset();
  EXPECT_EQ(freed, 0);
  EXPECT_EQ(CommonName(second.get()), "shared");
  second.reset();
  EXPECT_EQ(freed, 1);
}

TEST(OpenSslPtrTest, CertificateStackFreesItsCertificates) {
  int freed_a = 0, freed_b = 0;
  UniquePtr<STACK_OF(X509)> stack(sk_X509_new_null());
  ASSERT_NE(stack, nullptr);
  for (auto [cn, counter] : {std::pair<const char*, int*>{"a", &freed_a}, {"b", &freed_b}}) {
    UniquePtr<X509> cert = SelfSigned(cn);
    ASSERT_NE(cert, nullptr);
    Mark(cert.get(), counter);
    ASSERT_GT(sk_X509_push(stack.get(), cert.get()), 0);
    cert.release();  // Owned by the stack now.
  }
  ASSERT_EQ(sk_X509_num(stack.get()), 2);
  EXPECT_EQ(CommonName(sk_X509_value(stack.get(), 1)), "b");
  EXPECT_EQ(freed_a + freed_b, 0);
  stack.reset();
  EXPECT_EQ(freed_a, 1);
  EXPECT_EQ(freed_b, 1);
}

TEST(OpenSslPtrTest, CrlStackFreesItsCrls) {
  UniquePtr<STACK_OF(X509_CRL)> stack(sk_X509_CRL_new_null());
  ASSERT_NE(stack, nullptr);
  UniquePtr<X509_CRL> crl(X509_CRL_new());
  ASSERT_NE(crl, nullptr);
  ASSERT_EQ(X509_CRL_set_version(crl.get(), X509_CRL_VERSION_2), 1);
  ASSERT_GT(sk_X509_CRL_push(stack.get(), crl.get()), 0);
  crl.release();  // Owned by the stack now.
  EXPECT_EQ(X509_CRL_get_version(sk_X509_CRL_value(stack.get(), 0)), X509_CRL_VERSION_2);
}

TEST(OpenSslPtrTest, BioFreesTheWholeChain) {
  int freed_b64 = 0, freed_mem = 0;
  UniquePtr<BIO> b64(BIO_new(BIO_f_base64()));
  ASSERT_NE(b64, nullptr);
  BIO* mem = BIO_new(BIO_s_mem());
  ASSERT_NE(mem, nullptr);
  Mark(b64.get(), &freed_b64);
  Mark(mem, &freed_mem);
  BIO_push(b64.get(), mem);  // `mem` belongs to the chain now.
  ASSERT_EQ(BIO_write(b64.get(), "hello", 5), 5);
  ASSERT_EQ(BIO_flush(b64.get()), 1);
  char* data = nullptr;
  long len = BIO_get_mem_data(mem, &data);
  EXPECT_EQ(std::string(data, static_cast<size_t>(len)), "aGVsbG8=\n");
  b64.reset();
  EXPECT_EQ(freed_b64, 1);
  EXPECT_EQ(freed_mem, 1);
}

TEST(OpenSslPtrTest, KeyContextKeepsItsKeyAlive) {
  int freed = 0;
  UniquePtr<EVP_PKEY> key(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"));
  ASSERT_NE(key, nullptr);
  Mark(key.get(), &freed);
  UniquePtr<EVP_PKEY_CTX> ctx(EVP_PKEY_CTX_new(key.get(), nullptr));
  ASSERT_NE(ctx, nullptr);
  key.reset();
  EXPECT_EQ(freed, 0);  // The context holds a reference.
  ASSERT_EQ(EVP_PKEY_sign_init(ctx.get()), 1);
  const unsigned char digest[32] = {1, 2, 3};
  size_t len = 0;
  ASSERT_EQ(EVP_PKEY_sign(ctx.get(), nullptr, &len, digest, sizeof digest), 1);
  EXPECT_GT(len, 0u);
  ctx.reset();
  EXPECT_EQ(freed, 1);
}

TEST(OpenSslPtrTest, DigestContextDigests) {
  UniquePtr<EVP_MD_CTX> ctx(EVP_MD_CTX_new());
  ASSERT_NE(ctx, nullptr);
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  ASSERT_EQ(EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr), 1);
  ASSERT_EQ(EVP_DigestUpdate(ctx.get(), "abc", 3), 1);
  ASSERT_EQ(EVP_DigestFinal_ex(ctx.get(), md, &len), 1);
  ASSERT_EQ(len, 32u);
  // FIPS 180-2 Appendix B.1.
  EXPECT_EQ(md[0], 0xba);
  EXPECT_EQ(md[1], 0x78);
  EXPECT_EQ(md[31], 0xad);
}

TEST(OpenSslPtrTest, SslKeepsItsContextAlive) {
  int ctx_freed = 0, ssl_freed = 0;
  UniquePtr<SSL_CTX> ctx(SSL_CTX_new(TLS_server_method()));
  ASSERT_NE(ctx, nullptr);
  Mark(ctx.get(), &ctx_freed);
  UniquePtr<SSL> ssl(SSL_new(ctx.get()));
  ASSERT_NE(ssl, nullptr);
  Mark(ssl.get(), &ssl_freed);
  SSL_CTX* raw_ctx = ctx.get();
  ctx.reset();
  EXPECT_EQ(ctx_freed, 0);  // The SSL holds a reference.
  EXPECT_EQ(SSL_get_SSL_CTX(ssl.get()), raw_ctx);
  EXPECT_EQ(SSL_is_server(ssl.get()), 1);
  ssl.reset();
  EXPECT_EQ(ssl_freed, 1);
  EXPECT_EQ(ctx_freed, 1);
}

TEST(OpenSslPtrTest, StoreAndStoreContextVerifyAndFree) {
  int cert_freed = 0, store_freed = 0, ctx_freed = 0;
  UniquePtr<X509> root = SelfSigned("root");
  ASSERT_NE(root, nullptr);
  Mark(root.get(), &cert_freed);
  UniquePtr<X509_STORE> store(X509_STORE_new());
  ASSERT_NE(store, nullptr);
  Mark(store.get(), &store_freed);
  ASSERT_EQ(X509_STORE_add_cert(store.get(), root.get()), 1);  // Takes its own reference.

  UniquePtr<X509_STORE_CTX> ctx(X509_STORE_CTX_new());
  ASSERT_NE(ctx, nullptr);
  Mark(ctx.get(), &ctx_freed);
  ASSERT_EQ(X509_STORE_CTX_init(ctx.get(), store.get(), root.get(), nullptr), 1);
  EXPECT_EQ(X509_verify_cert(ctx.get()), 1)
      << X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
  ctx.reset();
  EXPECT_EQ(ctx_freed, 1);

  root.reset();
  EXPECT_EQ(cert_freed, 0);  // The store holds a reference.
  store.reset();
  EXPECT_EQ(store_freed, 1);
  EXPECT_EQ(cert_freed, 1);
}

TEST(OpenSslPtrTest, BignumsAndOpenSslBuffers) {
  UniquePtr<BIGNUM> a(BN_new());
  UniquePtr<BIGNUM> b(BN_new());
  UniquePtr<BIGNUM> product(BN_new());
  UniquePtr<BN_CTX> ctx(BN_CTX_new());
  ASSERT_TRUE(a && b && product && ctx);
  ASSERT_EQ(BN_set_word(a.get(), 6), 1);
  ASSERT_EQ(BN_set_word(b.get(), 7), 1);
  ASSERT_EQ(BN_mul(product.get(), a.get(), b.get(), ctx.get()), 1);
  UniquePtr<char> hex(BN_bn2hex(product.get()));
  ASSERT_NE(hex, nullptr);
  EXPECT_EQ(std::string(hex.get()), "2A");

  UniquePtr<X509> cert = SelfSigned("der");
  ASSERT_NE(cert, nullptr);
  unsigned char* raw = nullptr;
  int len = i2d_X509(cert.get(), &raw);
  UniquePtr<unsigned char> der(raw);
  ASSERT_GT(len, 0);
  EXPECT_EQ(der.get()[0], 0x30);  // A DER SEQUENCE.
}

TEST(OpenSslPtrTest, Asn1StringsAndObjects) {
  UniquePtr<ASN1_INTEGER> integer(ASN1_INTEGER_new());
  ASSERT_NE(integer, nullptr);
  ASSERT_EQ(ASN1_INTEGER_set_int64(integer.get(), 1234567), 1);
  EXPECT_EQ(ASN1_INTEGER_get(integer.get()), 1234567);

  UniquePtr<ASN1_OCTET_STRING> octets(ASN1_OCTET_STRING_new());
  ASSERT_NE(octets, nullptr);
  ASSERT_EQ(
      ASN1_OCTET_STRING_set(octets.get(), reinterpret_cast<const unsigned char*>("\x01\x02"), 2),
      1);
  EXPECT_EQ(ASN1_STRING_length(octets.get()), 2);

  UniquePtr<ASN1_BIT_STRING> bits(ASN1_BIT_STRING_new());
  ASSERT_NE(bits, nullptr);
  ASSERT_EQ(ASN1_BIT_STRING_set_bit(bits.get(), 5, 1), 1);
  EXPECT_EQ(ASN1_BIT_STRING_get_bit(bits.get(), 5), 1);
  EXPECT_EQ(ASN1_BIT_STRING_get_bit(bits.get(), 4), 0);

  UniquePtr<ASN1_IA5STRING> ia5(ASN1_IA5STRING_new());
  ASSERT_NE(ia5, nullptr);
  ASSERT_EQ(ASN1_STRING_set(ia5.get(), "localhost", -1), 1);
  EXPECT_EQ(ASN1_STRING_length(ia5.get()), 9);

  UniquePtr<ASN1_TIME> time(ASN1_TIME_set(nullptr, 86400));
  ASSERT_NE(time, nullptr);
  struct tm tm = {};
  ASSERT_EQ(ASN1_TIME_to_tm(time.get(), &tm), 1);
  EXPECT_EQ(tm.tm_year, 70);
  EXPECT_EQ(tm.tm_mday, 2);

  UniquePtr<ASN1_OBJECT> oid(OBJ_txt2obj("1.3.6.1.4.1.99999.1", /*no_name=*/1));
  ASSERT_NE(oid, nullptr);
  char text[64] = {0};
  ASSERT_GT(OBJ_obj2txt(text, sizeof text, oid.get(), 1), 0);
  EXPECT_EQ(std::string(text), "1.3.6.1.4.1.99999.1");
}

TEST(OpenSslPtrTest, NamesAndExtensions) {
  UniquePtr<X509_NAME> name(X509_NAME_new());
  ASSERT_NE(name, nullptr);
  UniquePtr<X509_NAME_ENTRY> entry(X509_NAME_ENTRY_create_by_NID(
      nullptr, NID_commonName, MBSTRING_UTF8, reinterpret_cast<const unsigned char*>("x"), 1));
  ASSERT_NE(entry, nullptr);
  ASSERT_EQ(X509_NAME_add_entry(name.get(), entry.get(), -1, 0), 1);  // Adds a copy.
  entry.reset();
  EXPECT_EQ(X509_NAME_entry_count(name.get()), 1);

  UniquePtr<BASIC_CONSTRAINTS> bc(BASIC_CONSTRAINTS_new());
  ASSERT_NE(bc, nullptr);
  bc->ca = 0xFF;
  UniquePtr<X509_EXTENSION> ext(X509V3_EXT_i2d(NID_basic_constraints, 1, bc.get()));
  ASSERT_NE(ext, nullptr);
  EXPECT_EQ(X509_EXTENSION_get_critical(ext.get()), 1);
  EXPECT_EQ(OBJ_obj2nid(X509_EXTENSION_get_object(ext.get())), NID_basic_constraints);

  UniquePtr<AUTHORITY_KEYID> akid(AUTHORITY_KEYID_new());
  ASSERT_NE(akid, nullptr);
  akid->keyid = ASN1_OCTET_STRING_new();  // Owned by `akid`.
  ASSERT_NE(akid->keyid, nullptr);
  UniquePtr<X509_EXTENSION> aki(X509V3_EXT_i2d(NID_authority_key_identifier, 0, akid.get()));
  EXPECT_NE(aki, nullptr);

  UniquePtr<GENERAL_NAMES> names(GENERAL_NAMES_new());
  ASSERT_NE(names, nullptr);
  UniquePtr<GENERAL_NAME> dns(GENERAL_NAME_new());
  UniquePtr<ASN1_IA5STRING> value(ASN1_IA5STRING_new());
  ASSERT_TRUE(dns && value);
  ASSERT_EQ(ASN1_STRING_set(value.get(), "localhost", -1), 1);
  GENERAL_NAME_set0_value(dns.get(), GEN_DNS, value.release());  // Owned by `dns` now.
  ASSERT_GT(sk_GENERAL_NAME_push(names.get(), dns.get()), 0);
  dns.release();  // Owned by `names` now.
  EXPECT_EQ(sk_GENERAL_NAME_num(names.get()), 1);
  EXPECT_EQ(sk_GENERAL_NAME_value(names.get(), 0)->type, GEN_DNS);

  UniquePtr<EXTENDED_KEY_USAGE> eku(sk_ASN1_OBJECT_new_null());
  ASSERT_NE(eku, nullptr);
  UniquePtr<ASN1_OBJECT> oid(OBJ_txt2obj("1.3.6.1.4.1.99999.2", 1));
  ASSERT_NE(oid, nullptr);
  ASSERT_GT(sk_ASN1_OBJECT_push(eku.get(), oid.get()), 0);
  oid.release();  // Owned by `eku` now.
  ASSERT_GT(sk_ASN1_OBJECT_push(eku.get(), OBJ_nid2obj(NID_server_auth)), 0);  // Static object.
  EXPECT_EQ(sk_ASN1_OBJECT_num(eku.get()), 2);
}

TEST(OpenSslPtrTest, CrlOwnsTheEntriesAddedToIt) {
  UniquePtr<X509_CRL> crl(X509_CRL_new());
  ASSERT_NE(crl, nullptr);
  for (long serial : {3, 1, 2}) {
    UniquePtr<X509_REVOKED> entry(X509_REVOKED_new());
    UniquePtr<ASN1_INTEGER> number(ASN1_INTEGER_new());
    UniquePtr<ASN1_TIME> when(ASN1_TIME_set(nullptr, 0));
    ASSERT_TRUE(entry && number && when);
    ASSERT_EQ(ASN1_INTEGER_set(number.get(), serial), 1);
    ASSERT_EQ(X509_REVOKED_set_serialNumber(entry.get(), number.get()), 1);  // Copies.
    ASSERT_EQ(X509_REVOKED_set_revocationDate(entry.get(), when.get()), 1);  // Copies.
    ASSERT_EQ(X509_CRL_add0_revoked(crl.get(), entry.get()), 1);
    entry.release();  // Owned by the CRL now.
  }
  ASSERT_EQ(X509_CRL_sort(crl.get()), 1);
  STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());  // Owned by the CRL.
  ASSERT_EQ(sk_X509_REVOKED_num(revoked), 3);
  EXPECT_EQ(ASN1_INTEGER_get(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, 0))), 1);
}

}  // namespace
}  // namespace ssl
}  // namespace polder
