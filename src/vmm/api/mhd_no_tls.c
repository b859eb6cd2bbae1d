/* Debian's libmicrohttpd is built with HTTPS support (GnuTLS), but Debian ships no static
 * libgnutls. Our static edgevisor binary serves plain HTTP on a Unix socket only and never passes
 * MHD_USE_TLS, so the library's GnuTLS paths are unreachable. These definitions satisfy the
 * static link: the two that MHD calls unconditionally (library init and fini) succeed, and every
 * other one aborts loudly should it ever be reached. Compiled only into static builds; dynamic
 * builds link the real libgnutls through libmicrohttpd.so. If a Debian update makes MHD need
 * another symbol, the static link fails and names it. */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>

int gnutls_global_init(void) { return 0; }
void gnutls_global_deinit(void) {}
void* (*gnutls_malloc)(size_t) = malloc;

static void no_tls(const char* fn) {
  fprintf(stderr, "edgevisor: %s called, but this static build has no TLS support\n", fn);
  abort();
}

#define NO_TLS(name) \
  void name(void);   \
  void name(void) { no_tls(#name); }
NO_TLS(gnutls_alpn_set_protocols)
NO_TLS(gnutls_bye)
NO_TLS(gnutls_certificate_allocate_credentials)
NO_TLS(gnutls_certificate_free_credentials)
NO_TLS(gnutls_certificate_server_set_request)
NO_TLS(gnutls_certificate_set_dh_params)
NO_TLS(gnutls_certificate_set_retrieve_function2)
NO_TLS(gnutls_certificate_set_retrieve_function3)
NO_TLS(gnutls_certificate_set_x509_key_mem)
NO_TLS(gnutls_certificate_set_x509_key_mem2)
NO_TLS(gnutls_certificate_set_x509_trust_mem)
NO_TLS(gnutls_cipher_get)
NO_TLS(gnutls_credentials_set)
NO_TLS(gnutls_deinit)
NO_TLS(gnutls_dh_params_deinit)
NO_TLS(gnutls_dh_params_import_pkcs3)
NO_TLS(gnutls_dh_params_init)
NO_TLS(gnutls_handshake)
NO_TLS(gnutls_init)
NO_TLS(gnutls_priority_deinit)
NO_TLS(gnutls_priority_init)
NO_TLS(gnutls_priority_set)
NO_TLS(gnutls_protocol_get_version)
NO_TLS(gnutls_psk_allocate_server_credentials)
NO_TLS(gnutls_psk_free_server_credentials)
NO_TLS(gnutls_psk_set_server_credentials_function)
NO_TLS(gnutls_record_check_pending)
NO_TLS(gnutls_record_get_direction)
NO_TLS(gnutls_record_recv)
NO_TLS(gnutls_record_send)
NO_TLS(gnutls_session_get_ptr)
NO_TLS(gnutls_session_set_ptr)
NO_TLS(gnutls_strerror)
NO_TLS(gnutls_transport_set_int2)
