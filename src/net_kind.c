/* Network kinds by name: apart from the networks themselves, so that the
 * option and checkpoint parsers (and their fuzzers) need nothing else. */
#include <string.h>

#include "wcm/net.h"

const char *wcm_net_kind_name(wcm_net_kind kind) {
    switch (kind) {
    case WCM_NET_FLAT: return "flat";
    case WCM_NET_CONDITIONAL: return "conditional";
    case WCM_NET_LOWPASS: return "lowpass";
    }
    return "unknown";
}

int wcm_net_kind_parse(const char *s, wcm_net_kind *kind) {
    if (!strcmp(s, "flat")) *kind = WCM_NET_FLAT;
    else if (!strcmp(s, "conditional")) *kind = WCM_NET_CONDITIONAL;
    else if (!strcmp(s, "lowpass") || !strcmp(s, "low")) *kind = WCM_NET_LOWPASS;
    else return WCM_ERR_ARG;
    return WCM_OK;
}
