/*
 * migrations: the schema changes of mdm.db, embedded from
 * libmdm/migrations/NNNN_name.sql at build time.  Numbers start at 1,
 * have no gaps, and a released migration is never edited: add a new one.
 */
#ifndef MDM_MIGRATIONS_H
#define MDM_MIGRATIONS_H

struct mdm_migration {
	int version;
	const char *name;
	const char *sql;
};

extern const struct mdm_migration mdm_migrations[];
extern const unsigned mdm_migrations_count;

#endif
