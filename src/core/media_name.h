// The names media files are stored under: unguessable, safe in a path, recognisable by the
// media sweep.
#pragma once

#include <string>
#include <string_view>

namespace chatterd {

// The username as a file name prefix: only [A-Za-z0-9_.-] kept (spaces become '_', other bytes are
// dropped), leading dots and dashes stripped (no hidden files, nothing that reads as a command-line
// option), at most 64 characters. May be empty (e.g. for "ジョン").
std::string sanitized_username_prefix(std::string_view username);

// 32 lowercase hex digits from RAND_bytes(16): the unguessable part of every name the module
// makes (media files, resumable uploads). Throws std::runtime_error if RAND_bytes fails.
std::string random_hex();

// "<prefix>-<32 lowercase hex digits from RAND_bytes(16)>.<extension>", or "<32 hex>.<extension>"
// when the prefix is empty: unguessable, collision-free in practice (128 random bits), never a path
// separator, never a leading dot, at most 98 bytes plus the extension. Throws std::runtime_error if
// RAND_bytes fails, std::invalid_argument if extension is empty or not [A-Za-z0-9] (a programming
// error: extensions come from sniff_media_type).
std::string random_media_name(std::string_view username, std::string_view extension);

// Whether name is one random_media_name makes, or the temporary name of a file being received
// where the file system lacks O_TMPFILE ("." + random_media_name("", "upload")): the only
// names the media sweep may remove (an operator's own files in the media root stay).
bool is_media_name(std::string_view name);

}  // namespace chatterd
