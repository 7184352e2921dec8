// Posts whose INSERT was sent but whose outcome never came (the connection broke, or
// chatterd_pg_timeout passed first): the worker settles each once the database answers again.
// While the backend the INSERT was sent to lives, the row may still be committed (a commit
// waiting for a synchronous standby is committed locally and becomes visible when the wait
// ends, even by a cancel): so that backend is ended first (pg_terminate_backend, waiting for
// it to exit), and only then is the row looked up by the id chatterd gave it. The files of a
// stored row are kept, the others removed, and one line says which. The media sweep remains
// for the files of a worker that died before its posts were settled.
#pragma once

#include "ngx/conf.h"

#include <string>
#include <vector>

namespace chatterd {

struct UnknownPost {
    std::string id;  // the row's uuid, chosen by chatterd
    int backend_pid;
    ngx_msec_t handed_over;  // when the resolver took it (set by resolve_post)
    const char* endpoint;
    int media_dir;                   // the worker's descriptor of the media root; -1 without files
    std::vector<std::string> files;  // the names the row would hold
};

// The files' names, space-separated, for the log ("no file" without any).
std::string media_names(const std::vector<std::string>& names);

// Takes the post over; settled on the pool of spec, from the event loop (never inside this
// call). Logs nothing itself: the caller has said why the outcome is unknown.
void resolve_post(PgPoolSpec& spec, UnknownPost post) noexcept;

// At worker exit, before the pools close: posts not settled yet are logged, their files left
// to the media sweep.
void post_resolvers_stop() noexcept;

}  // namespace chatterd
