#include "core/json.h"

#include <cctype>
#include <memory>
#include <new>
#include <stdexcept>
#include <utility>

#include <yajl/yajl_parse.h>

#include "core/utf8.h"

// The postchatt body in, with yajl's parser. (JSON out is json_out.cpp.)

namespace chatterd {

namespace {

const unsigned char* as_bytes(const char* text) {
    return reinterpret_cast<const unsigned char*>(text);
}

// What the parser has seen as the value of one wanted top-level key.
struct FieldSeen {
    bool present = false;
    bool is_string = false;
    std::string value;
};

// State of one parse, driven by yajl's callbacks. Callbacks only record: the verdict comes after
// yajl has checked the whole body, so malformed JSON is always reported as such, whatever its first
// value is.
struct ChattParse {
    enum class TopLevel { nothing_yet, object, something_else };

    TopLevel top_level = TopLevel::nothing_yet;
    std::size_t depth = 0;  // containers open around the next token
    // The wanted key whose value comes next; nullptr for any other key.
    FieldSeen* value_owner = nullptr;
    FieldSeen username;
    FieldSeen message;
    std::exception_ptr failure;  // an exception caught in a callback, rethrown after yajl returns

    // A value (scalar or container start) at the current depth.
    void value(bool is_string, std::string_view text) {
        if (depth == 0) {
            top_level = TopLevel::something_else;
        } else if (depth == 1 && value_owner != nullptr) {
            value_owner->present = true;
            value_owner->is_string = is_string;
            value_owner->value.assign(text.data(), text.size());
            value_owner = nullptr;
        }
    }

    void container_start(bool is_map) {
        if (depth == 0 && is_map) {
            top_level = TopLevel::object;
        } else {
            value(false, {});
        }
        ++depth;
    }

    void key(std::string_view name) {
        if (depth != 1) {
            return;
        }
        value_owner = name == "username" ? &username : name == "message" ? &message : nullptr;
    }
};

// Runs one step of a ChattParse as a yajl callback: 1 to continue, 0 to stop after an exception.
template <typename Step>
int run_step(void* parse, Step step) noexcept {
    auto* state = static_cast<ChattParse*>(parse);
    try {
        step(*state);
        return 1;
    } catch (...) {
        state->failure = std::current_exception();
        return 0;
    }
}

std::string_view as_text(const unsigned char* bytes, std::size_t len) {
    return std::string_view(reinterpret_cast<const char*>(bytes), len);
}

int on_non_string(void* parse) {
    return run_step(parse, [](ChattParse& state) { state.value(false, {}); });
}

int on_boolean(void* parse, int) {
    return on_non_string(parse);
}

int on_number(void* parse, const char*, std::size_t) {
    return on_non_string(parse);
}

int on_string(void* parse, const unsigned char* bytes, std::size_t len) {
    return run_step(parse, [=](ChattParse& state) { state.value(true, as_text(bytes, len)); });
}

int on_map_key(void* parse, const unsigned char* bytes, std::size_t len) {
    return run_step(parse, [=](ChattParse& state) { state.key(as_text(bytes, len)); });
}

int on_map_start(void* parse) {
    return run_step(parse, [](ChattParse& state) { state.container_start(true); });
}

int on_array_start(void* parse) {
    return run_step(parse, [](ChattParse& state) { state.container_start(false); });
}

int on_container_end(void* parse) {
    return run_step(parse, [](ChattParse& state) { --state.depth; });
}

// Numbers arrive through the number callback as text (integer and double stay unset), so a big
// integer is a value like any other rather than yajl's "integer overflow" error: Python accepts any
// integer.
const yajl_callbacks kChattCallbacks = {
    on_non_string,     // null
    on_boolean,        // boolean
    nullptr,           // integer
    nullptr,           // double
    on_number,         // number
    on_string,         // string
    on_map_start,      // start_map
    on_map_key,        // map_key
    on_container_end,  // end_map
    on_array_start,    // start_array
    on_container_end,  // end_array
};

std::string yajl_error_message(yajl_handle parser, std::string_view body) {
    unsigned char* message = yajl_get_error(parser, 0, as_bytes(body.data()), body.size());
    if (message == nullptr) {
        throw std::bad_alloc();
    }
    std::string text(reinterpret_cast<const char*>(message));
    yajl_free_error(parser, message);
    text.erase(text.find_last_not_of(" \n") + 1);  // yajl ends its message with a newline
    return text;
}

// The UTF-16 code unit of the \uXXXX escape whose backslash is at body[at], if there is one.
std::optional<unsigned> escaped_code_unit(std::string_view body, std::size_t at) {
    if (at + 6 > body.size() || body[at] != '\\' || body[at + 1] != 'u') {
        return std::nullopt;
    }
    unsigned unit = 0;
    for (char digit : body.substr(at + 2, 4)) {
        unsigned value = std::isdigit(static_cast<unsigned char>(digit))
                             ? digit - '0'
                             : (std::tolower(digit) - 'a' + 10);
        if (value > 15) {
            return std::nullopt;
        }
        unit = unit * 16 + value;
    }
    return unit;
}

// Where an escaped surrogate has no partner. yajl does not refuse these: a lone high surrogate
// ("\ud800") becomes
// "?" and a lone low one becomes bytes PostgreSQL refuses, so they are found in the text itself.
// Runs on a body yajl accepted, where a backslash only occurs inside strings.
std::optional<std::size_t> unpaired_surrogate_escape(std::string_view body) {
    for (std::size_t i = body.find('\\'); i != std::string_view::npos; i = body.find('\\', i)) {
        std::optional<unsigned> unit = escaped_code_unit(body, i);
        if (!unit) {
            i += 2;  // another escape, such as "\\" or "\n"
            continue;
        }
        bool high = *unit >= 0xD800 && *unit <= 0xDBFF;
        bool low = *unit >= 0xDC00 && *unit <= 0xDFFF;
        if (low) {
            return i;
        }
        if (high) {
            std::optional<unsigned> next = escaped_code_unit(body, i + 6);
            if (!next || *next < 0xDC00 || *next > 0xDFFF) {
                return i;
            }
            i += 6;
        }
        i += 6;
    }
    return std::nullopt;
}

// Runs yajl over the whole body; returns why if the body is not one well-formed JSON value in
// UTF-8. yajl only checks the shape of UTF-8 sequences: overlong forms (C0 80), encoded surrogates
// (ED A0 80) and code points past U+10FFFF get through, and PostgreSQL would refuse them at INSERT
// time, so the body is checked first.
std::optional<std::string> parse_json(std::string_view body, ChattParse& state) {
    if (std::optional<std::size_t> offset = first_invalid_utf8(body)) {
        return "invalid UTF-8 at byte " + std::to_string(*offset);
    }
    using ParserHandle = std::unique_ptr<yajl_handle_t, decltype(&yajl_free)>;
    ParserHandle parser(yajl_alloc(&kChattCallbacks, nullptr, &state), &yajl_free);
    if (!parser) {
        throw std::bad_alloc();
    }
    // Defaults, spelled out because the API depends on them: checked strings, one value, nothing
    // after it.
    yajl_config(parser.get(), yajl_dont_validate_strings, 0);
    yajl_config(parser.get(), yajl_allow_trailing_garbage, 0);
    yajl_config(parser.get(), yajl_allow_multiple_values, 0);
    yajl_config(parser.get(), yajl_allow_comments, 0);

    yajl_status status = yajl_parse(parser.get(), as_bytes(body.data()), body.size());
    if (status == yajl_status_ok) {
        status = yajl_complete_parse(parser.get());
    }
    if (state.failure) {
        std::rethrow_exception(state.failure);
    }
    if (status != yajl_status_ok) {
        return yajl_error_message(parser.get(), body);
    }
    return std::nullopt;
}

// Why a field's value is unusable, or an empty string when it is a usable string.
std::string field_problem(const FieldSeen& field, std::string_view name) {
    std::string quoted = "\"" + std::string(name) + "\"";
    if (!field.present) {
        return "missing key " + quoted;
    }
    if (!field.is_string) {
        return quoted + " is not a string";
    }
    if (field.value.find('\0') != std::string::npos) {
        return quoted + " contains a NUL character";
    }
    if (first_invalid_utf8(
            field.value)) {  // the body was valid: only an escape such as "\udc00" gets here
        return quoted + " contains an unpaired surrogate escape";
    }
    return {};
}

}  // namespace

std::optional<ChattFields> parse_chatt_json(std::string_view body, std::string& why) {
    ChattParse state;
    if (std::optional<std::string> yajl_message = parse_json(body, state)) {
        why = "malformed JSON: " + *yajl_message;
        return std::nullopt;
    }
    if (state.top_level != ChattParse::TopLevel::object) {
        why = "not a JSON object";
        return std::nullopt;
    }
    for (auto [field, name] :
         {std::pair{&state.username, "username"}, std::pair{&state.message, "message"}}) {
        why = field_problem(*field, name);
        if (!why.empty()) {
            return std::nullopt;
        }
    }
    if (std::optional<std::size_t> offset = unpaired_surrogate_escape(body)) {
        why = "unpaired surrogate escape at byte " + std::to_string(*offset);
        return std::nullopt;
    }
    return ChattFields{std::move(state.username.value), std::move(state.message.value)};
}

}  // namespace chatterd
