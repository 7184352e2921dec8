#include "ngx/pg_target.h"

#include <string_view>

namespace chatterd {

std::string pg_target(const ngx_str_t& conninfo) {
    char* error = nullptr;
    PQconninfoOption* options =
        PQconninfoParse(reinterpret_cast<const char*>(conninfo.data), &error);
    PQfreemem(error);
    if (options == nullptr) return "?";
    std::string text;
    for (std::string_view key : {"host", "hostaddr", "port", "dbname", "user"}) {
        for (PQconninfoOption* o = options; o->keyword != nullptr; o++) {
            if (key != o->keyword || o->val == nullptr || o->val[0] == '\0') continue;
            if (!text.empty()) text += ' ';
            text.append(key).append("=").append(o->val);
        }
    }
    PQconninfoFree(options);
    return text.empty() ? "libpq defaults" : text;
}

}  // namespace chatterd
