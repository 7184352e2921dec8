#include "handlers/rows_query.h"

#include "ngx/list_cache.h"
#include "ngx/metrics.h"
#include "ngx/reply.h"
#include "ngx/rows_json.h"

#include <new>

namespace chatterd {
namespace {

// A request's hold on the JSON answer it sends: its own, started when its first rows arrive (a
// request waiting for a connection holds no memory), or, when it shared the query's run with
// others, the answer the run's reader built. Lives in request-pool cleanup storage: the hold
// ends with the request, when the buffers have been sent (or the client has gone).
struct RowsAnswer {
    explicit RowsAnswer(const RowsQuery& query) : query(query) {}
    ~RowsAnswer() {
        list_cache_abandon(cache);
        if (json != nullptr) json->let_go();
    }
    RowsAnswer(const RowsAnswer&) = delete;
    RowsAnswer& operator=(const RowsAnswer&) = delete;

    bool start(ngx_log_t* log) {
        if (json == nullptr && !refused_by_bound) {
            json = RowsJson::create(query.kinds, query.column_count, log, refused_by_bound);
        }
        return json != nullptr;
    }
    // False when the reader built no answer.
    bool share(RowsJson* readers) {
        if (readers == nullptr) return false;
        readers->hold();
        if (json != nullptr) json->let_go();
        json = readers;
        return true;
    }
    // Whether the answer was refused because it would have crossed chatterd_answer_memory_max.
    bool over_memory_bound() const {
        return refused_by_bound || (json != nullptr && json->over_memory_bound());
    }

    const RowsQuery& query;
    RowsJson* json = nullptr;
    bool refused_by_bound = false;
    ListCacheTicket cache;
};

RowsAnswer* rows_answer(ngx_http_request_t* r) {
    return static_cast<RowsAnswer*>(ngx_http_get_module_ctx(r, ngx_http_chatterd_module));
}

// One CopyData message: its rows go into the JSON answer.
bool take_rows(ngx_http_request_t* r, std::string_view copy_data) {
    RowsAnswer* answer = rows_answer(r);
    return answer->start(r->connection->log) && answer->json->take(copy_data, r->connection->log);
}

// The rows were refused, by this request's on_row or, for a request that shared the run, by
// the reader's: every request of the run answers as the reader does.
ngx_int_t answer_rows_refused(ngx_http_request_t* r, const PgOutcome& outcome) {
    const RowsAnswer* taker = rows_answer(outcome.rows_reader ? outcome.rows_reader : r);
    if (taker->over_memory_bound()) return refuse_over_memory_bound(r);
    // Out of memory (logged by the reader's on_row).
    if (taker->json == nullptr) return send_failure(r, Failure::unavailable);
    return send_failure(r, Failure::internal, "Cannot read chatts");
}

ngx_int_t answer_rows(ngx_http_request_t* r, const PgOutcome& outcome) {
    RowsAnswer* answer = rows_answer(r);
    // The pool has logged why there is no result; on_row logged why it refused the rows.
    if (outcome.kind == PgOutcome::Kind::rows_refused) return answer_rows_refused(r, outcome);
    if (outcome.kind != PgOutcome::Kind::done) return send_failure(r, Failure::unavailable);
    if (PQresultStatus(outcome.result) != PGRES_COMMAND_OK) {
        return answer_read_failed(r, outcome.result, "the COPY of chatts");
    }
    if (outcome.rows_reader != nullptr && !answer->share(rows_answer(outcome.rows_reader)->json)) {
        return send_failure(r, Failure::unavailable);
    }
    if (!answer->start(r->connection->log)) {
        if (answer->over_memory_bound()) return refuse_over_memory_bound(r);
        return send_failure(r, Failure::unavailable);
    }
    if (!answer->json->finish(r->connection->log)) return NGX_HTTP_INTERNAL_SERVER_ERROR;
    list_cache_publish(r, answer->cache, *answer->json);
    ngx_chain_t* body = answer->json->body(r->pool);
    if (body == nullptr || !set_listing_validators(r, answer->json->etag()))
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    return send_json(r, NGX_HTTP_OK, body, answer->json->length());
}

}  // namespace

// The memory bound is the load of the clients (many answers held, or slow readers), not a
// fault: each request is told at info, and counted on the status page.
ngx_int_t refuse_over_memory_bound(ngx_http_request_t* r) {
    count_answer_over_memory_bound();
    ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                  "chatterd: %s: the answers of this worker would hold more than "
                  "chatterd_answer_memory_max; 503",
                  endpoint_name(loc_conf(r)->endpoint));
    return send_failure(r, Failure::unavailable);
}

ngx_int_t answer_read_failed(ngx_http_request_t* r, const PGresult* result, const char* statement) {
    OneLine line = pg_error_message(result);
    std::string_view message = line.view();
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "chatterd: %s: %s failed: %*s; check the chatts table against schema.sql and "
                  "the role's SELECT right",
                  endpoint_name(loc_conf(r)->endpoint), statement, message.size(), message.data());
    if (pg_result_means_unavailable(result)) return send_failure(r, Failure::unavailable);
    return send_failure(r, Failure::internal, "Database error while reading chatts");
}

ngx_int_t answer_with_rows(ngx_http_request_t* r, const RowsQuery& query) noexcept try {
    ngx_int_t rc;
    RowsAnswer* answer = start_read<RowsAnswer>(r, rc, query);
    if (answer == nullptr) return rc;
    list_cache_look_up(r, answer->cache);
    if (answer->cache.kind == ListCacheTicket::Kind::hit) {
        rc = list_cache_send(r, answer->cache);
        if (rc != NGX_DECLINED) return rc;
    }
    pg_run(r, PgQuery{nullptr, query.copy_sql, 0, nullptr, &query.shared}, take_rows, answer_rows);
    return NGX_DONE;
} catch (const std::exception& e) {
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0, "chatterd: %s", e.what());
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
}

}  // namespace chatterd
