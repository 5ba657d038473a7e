// std::unique_ptr for OpenSSL objects, in the manner of BoringSSL's bssl::UniquePtr:
//
//   ssl::UniquePtr<BIO> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
//   ssl::UniquePtr<X509> cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
//   ssl::UniquePtr<STACK_OF(X509)> chain(sk_X509_new_null());  // Frees its certificates too.
//   ssl::UniquePtr<char> hex(BN_bn2hex(bn));                    // OPENSSL_free.
//
// A UniquePtr<T> holds one reference (for reference-counted types) or the object itself and
// releases it with T's OpenSSL free function. Where an OpenSSL call takes ownership ("add0",
// "set0", "push"), pass `p.get()` and call `p.release()` only once the call succeeded.
//
// UniquePtr<T> of a type without a Deleter<T> below does not compile. The ASN1_STRING
// family (ASN1_INTEGER, ASN1_OCTET_STRING, ASN1_BIT_STRING, ASN1_IA5STRING, ASN1_TIME, ...) is
// one C type in OpenSSL 3 and shares one deleter; GENERAL_NAMES is STACK_OF(GENERAL_NAME) and
// EXTENDED_KEY_USAGE is STACK_OF(ASN1_OBJECT), and both free their elements.
#ifndef POLDER_COMMON_TLS_OPENSSL_PTR_H_
#define POLDER_COMMON_TLS_OPENSSL_PTR_H_

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>
#include <type_traits>

namespace polder {
namespace ssl {

// Deleter<T>()(p) releases `p` (never null) with T's OpenSSL free function.
template <typename T>
struct Deleter;

template <typename T>
using UniquePtr = std::unique_ptr<T, Deleter<T>>;

#define POLDER_SSL_DELETER(type, free_call)       \
  template <>                                     \
  struct Deleter<type> {                          \
    void operator()(type* p) const { free_call; } \
  }

// Buffers OpenSSL allocates for the caller (BN_bn2hex, i2d_*, ASN1_STRING_to_UTF8, ...).
POLDER_SSL_DELETER(char, OPENSSL_free(p));
POLDER_SSL_DELETER(unsigned char, OPENSSL_free(p));

// BIOs: the whole chain behind `p` (a single BIO when nothing was pushed onto it).
POLDER_SSL_DELETER(BIO, BIO_free_all(p));

POLDER_SSL_DELETER(BIGNUM, BN_free(p));
POLDER_SSL_DELETER(BN_CTX, BN_CTX_free(p));

POLDER_SSL_DELETER(ASN1_STRING, ASN1_STRING_free(p));
POLDER_SSL_DELETER(ASN1_OBJECT, ASN1_OBJECT_free(p));

POLDER_SSL_DELETER(EVP_PKEY, EVP_PKEY_free(p));
POLDER_SSL_DELETER(EVP_PKEY_CTX, EVP_PKEY_CTX_free(p));
POLDER_SSL_DELETER(EVP_MD_CTX, EVP_MD_CTX_free(p));

POLDER_SSL_DELETER(X509, X509_free(p));
POLDER_SSL_DELETER(X509_CRL, X509_CRL_free(p));
POLDER_SSL_DELETER(X509_REVOKED, X509_REVOKED_free(p));
POLDER_SSL_DELETER(X509_NAME, X509_NAME_free(p));
POLDER_SSL_DELETER(X509_NAME_ENTRY, X509_NAME_ENTRY_free(p));
POLDER_SSL_DELETER(X509_EXTENSION, X509_EXTENSION_free(p));
POLDER_SSL_DELETER(X509_STORE, X509_STORE_free(p));
POLDER_SSL_DELETER(X509_STORE_CTX, X509_STORE_CTX_free(p));
POLDER_SSL_DELETER(STACK_OF(X509), sk_X509_pop_free(p, X509_free));
POLDER_SSL_DELETER(STACK_OF(X509_CRL), sk_X509_CRL_pop_free(p, X509_CRL_free));

POLDER_SSL_DELETER(BASIC_CONSTRAINTS, BASIC_CONSTRAINTS_free(p));
POLDER_SSL_DELETER(AUTHORITY_KEYID, AUTHORITY_KEYID_free(p));
POLDER_SSL_DELETER(GENERAL_NAME, GENERAL_NAME_free(p));
POLDER_SSL_DELETER(GENERAL_NAMES, GENERAL_NAMES_free(p));
POLDER_SSL_DELETER(EXTENDED_KEY_USAGE, EXTENDED_KEY_USAGE_free(p));

POLDER_SSL_DELETER(SSL, SSL_free(p));
POLDER_SSL_DELETER(SSL_CTX, SSL_CTX_free(p));

#undef POLDER_SSL_DELETER

// The single ASN1_STRING deleter is right only while these stay one type.
static_assert(std::is_same_v<ASN1_INTEGER, ASN1_STRING> &&
                  std::is_same_v<ASN1_OCTET_STRING, ASN1_STRING> &&
                  std::is_same_v<ASN1_BIT_STRING, ASN1_STRING> &&
                  std::is_same_v<ASN1_IA5STRING, ASN1_STRING> &&
                  std::is_same_v<ASN1_TIME, ASN1_STRING>,
              "the ASN1_STRING family is no longer one type: give each its own deleter");
static_assert(std::is_same_v<GENERAL_NAMES, STACK_OF(GENERAL_NAME)> &&
                  std::is_same_v<EXTENDED_KEY_USAGE, STACK_OF(ASN1_OBJECT)>,
              "GENERAL_NAMES and EXTENDED_KEY_USAGE are expected to be stacks");

}  // namespace ssl
}  // namespace polder

#endif  // POLDER_COMMON_TLS_OPENSSL_PTR_H_
