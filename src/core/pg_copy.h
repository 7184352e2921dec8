// The rows of PostgreSQL's binary COPY format (COPY ... TO STDOUT (FORMAT binary)), as libpq's
// PQgetCopyData hands them over: one CopyData message at a time, each holding whole rows (the first
// also the file header, the last the end-of-data trailer). Binary COPY because it is the cheapest
// way to receive many rows with libpq 15: no PGresult per row as in single-row mode, and no text
// conversion of timestamps and UUIDs on the server.
#pragma once

#include <cstddef>
#include <string_view>

#include "core/cell.h"

namespace chatterd {

class CopyBinaryRows {
public:
    // Rows must have exactly this many fields.
    explicit CopyBinaryRows(std::size_t columns) : columns_(columns) {}

    enum class Next {
        row,           // cells hold the next row's fields (pointing into the message)
        message_done,  // nothing more in this message: feed the next one
        end_of_data,   // the trailer: the COPY is complete
        malformed,     // not binary COPY rows of this shape; the reader must not be used again
    };

    // Starts reading one message; it must stay alive while its rows are used.
    void feed(std::string_view message);

    // Reads the next row of the current message into cells (room for `columns` of them).
    Next next(Cell* cells);

    // Whether the end-of-data trailer has been read: only then were all the rows there.
    bool complete() const { return ended_ && !broken_; }

private:
    bool read_header();

    std::size_t columns_;
    std::string_view rest_;  // what remains unread of the current message
    bool header_read_ = false;
    bool ended_ = false;
    bool broken_ = false;
};

}  // namespace chatterd
