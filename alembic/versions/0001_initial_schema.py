"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('accounts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('role', sa.String(length=16), nullable=False),
    sa.Column('token_hash', sa.String(length=71), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('name', name=op.f('uq_accounts_name')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_accounts_token_hash'))
    )
    op.create_table('catalogue_versions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_id', sa.Integer(), nullable=False),
    sa.Column('change', sa.String(length=16), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_catalogue_versions'))
    )
    with op.batch_alter_table('catalogue_versions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_catalogue_versions_work_id'), ['work_id'], unique=False)

    op.create_table('checkpoints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('root', sa.String(length=71), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('key_id', sa.String(length=71), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tsa_request', sa.LargeBinary(), nullable=True),
    sa.Column('tsa_token', sa.LargeBinary(), nullable=True),
    sa.Column('tsa_url', sa.Text(), nullable=True),
    sa.Column('timestamped_at', sa.DateTime(timezone=True), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_checkpoints')),
    sa.UniqueConstraint('size', name=op.f('uq_checkpoints_size'))
    )
    op.create_table('leases',
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('owner', sa.String(length=200), nullable=False),
    sa.Column('until', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('name', name=op.f('pk_leases'))
    )
    op.create_table('ledger_entries',
    sa.Column('seq', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('kind', sa.String(length=32), nullable=False),
    sa.Column('subject', sa.String(length=100), nullable=False),
    sa.Column('content', sa.JSON(), nullable=False),
    sa.Column('content_sha256', sa.String(length=71), nullable=False),
    sa.Column('prev_hash', sa.String(length=71), nullable=False),
    sa.Column('entry_hash', sa.String(length=71), nullable=False),
    sa.Column('signature', sa.Text(), nullable=False),
    sa.Column('key_id', sa.String(length=71), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('seq', name=op.f('pk_ledger_entries')),
    sa.UniqueConstraint('entry_hash', name=op.f('uq_ledger_entries_entry_hash'))
    )
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_ledger_entries_subject'), ['subject'], unique=False)

    op.create_table('media_objects',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('sha256', sa.String(length=71), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mime', sa.String(length=100), nullable=True),
    sa.Column('kind', sa.String(length=16), nullable=True),
    sa.Column('stored', sa.Boolean(), nullable=False),
    sa.Column('rights', sa.JSON(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_objects')),
    sa.UniqueConstraint('sha256', name=op.f('uq_media_objects_sha256'))
    )
    op.create_table('media_urls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url_key', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('etag', sa.String(length=500), nullable=True),
    sa.Column('last_modified', sa.String(length=100), nullable=True),
    sa.Column('sha256', sa.String(length=71), nullable=True),
    sa.Column('checked_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_media_urls')),
    sa.UniqueConstraint('url_key', name=op.f('uq_media_urls_url_key'))
    )
    op.create_table('rightsholders',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_rightsholders')),
    sa.UniqueConstraint('name', name=op.f('uq_rightsholders_name'))
    )
    op.create_table('account_rightsholders',
    sa.Column('account_id', sa.Integer(), nullable=False),
    sa.Column('rightsholder_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_account_rightsholders_account_id_accounts'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['rightsholder_id'], ['rightsholders.id'], name=op.f('fk_account_rightsholders_rightsholder_id_rightsholders')),
    sa.PrimaryKeyConstraint('account_id', 'rightsholder_id', name=op.f('pk_account_rightsholders'))
    )
    op.create_table('watches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('rightsholder_id', sa.Integer(), nullable=True),
    sa.Column('seeds', sa.JSON(), nullable=False),
    sa.Column('allow_domains', sa.JSON(), nullable=False),
    sa.Column('include', sa.JSON(), nullable=False),
    sa.Column('exclude', sa.JSON(), nullable=False),
    sa.Column('max_depth', sa.Integer(), nullable=False),
    sa.Column('max_pages', sa.Integer(), nullable=False),
    sa.Column('render_js', sa.Boolean(), nullable=False),
    sa.Column('ignore_robots', sa.Boolean(), nullable=False),
    sa.Column('every_s', sa.Integer(), nullable=True),
    sa.Column('cron', sa.String(length=100), nullable=True),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rightsholder_id'], ['rightsholders.id'], name=op.f('fk_watches_rightsholder_id_rightsholders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_watches')),
    sa.UniqueConstraint('name', name=op.f('uq_watches_name'))
    )
    op.create_table('works',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('rightsholder_id', sa.Integer(), nullable=False),
    sa.Column('ref', sa.String(length=200), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('title', sa.String(length=500), nullable=False),
    sa.Column('creator', sa.String(length=500), nullable=True),
    sa.Column('isrc', sa.String(length=12), nullable=True),
    sa.Column('iswc', sa.String(length=15), nullable=True),
    sa.Column('sha256', sa.String(length=71), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('mime', sa.String(length=100), nullable=False),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('duration_s', sa.Float(), nullable=True),
    sa.Column('rights', sa.JSON(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rightsholder_id'], ['rightsholders.id'], name=op.f('fk_works_rightsholder_id_rightsholders')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_works')),
    sa.UniqueConstraint('rightsholder_id', 'ref', name=op.f('uq_works_rightsholder_id_ref'))
    )
    with op.batch_alter_table('works', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_works_rightsholder_id'), ['rightsholder_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_works_sha256'), ['sha256'], unique=False)

    op.create_table('fingerprints',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_id', sa.Integer(), nullable=False),
    sa.Column('type', sa.String(length=64), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['work_id'], ['works.id'], name=op.f('fk_fingerprints_work_id_works'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_fingerprints')),
    sa.UniqueConstraint('work_id', 'type', name=op.f('uq_fingerprints_work_id_type'))
    )
    with op.batch_alter_table('fingerprints', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_fingerprints_work_id'), ['work_id'], unique=False)

    op.create_table('licences',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_id', sa.Integer(), nullable=True),
    sa.Column('rightsholder_id', sa.Integer(), nullable=True),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('until', sa.Date(), nullable=True),
    sa.Column('created_by', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['rightsholder_id'], ['rightsholders.id'], name=op.f('fk_licences_rightsholder_id_rightsholders')),
    sa.ForeignKeyConstraint(['work_id'], ['works.id'], name=op.f('fk_licences_work_id_works')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_licences'))
    )
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_licences_domain'), ['domain'], unique=False)
        batch_op.create_index(batch_op.f('ix_licences_work_id'), ['work_id'], unique=False)

    op.create_table('runs',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('watch_id', sa.Integer(), nullable=True),
    sa.Column('scheduled_for', sa.DateTime(timezone=True), nullable=True),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('started_by', sa.String(length=200), nullable=False),
    sa.Column('late', sa.Boolean(), nullable=False),
    sa.Column('config', sa.JSON(), nullable=False),
    sa.Column('config_sha256', sa.String(length=71), nullable=True),
    sa.Column('robots', sa.JSON(), nullable=False),
    sa.Column('queued_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('pages', sa.Integer(), nullable=False),
    sa.Column('media', sa.Integer(), nullable=False),
    sa.Column('matches', sa.Integer(), nullable=False),
    sa.Column('errors', sa.Integer(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('lease_owner', sa.String(length=200), nullable=True),
    sa.Column('lease_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('not_before', sa.DateTime(timezone=True), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['watch_id'], ['watches.id'], name=op.f('fk_runs_watch_id_watches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_runs')),
    sa.UniqueConstraint('watch_id', 'scheduled_for', name=op.f('uq_runs_watch_id_scheduled_for'))
    )
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_runs_state'), ['state'], unique=False)
        batch_op.create_index(batch_op.f('ix_runs_watch_id'), ['watch_id'], unique=False)

    op.create_table('work_shares',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_id', sa.Integer(), nullable=False),
    sa.Column('rightsholder_id', sa.Integer(), nullable=False),
    sa.Column('share', sa.Numeric(precision=6, scale=3), nullable=False),
    sa.ForeignKeyConstraint(['rightsholder_id'], ['rightsholders.id'], name=op.f('fk_work_shares_rightsholder_id_rightsholders')),
    sa.ForeignKeyConstraint(['work_id'], ['works.id'], name=op.f('fk_work_shares_work_id_works'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_work_shares')),
    sa.UniqueConstraint('work_id', 'rightsholder_id', name=op.f('uq_work_shares_work_id_rightsholder_id'))
    )
    with op.batch_alter_table('work_shares', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_work_shares_work_id'), ['work_id'], unique=False)

    op.create_table('crawl_urls',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=False),
    sa.Column('url_key', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('kind', sa.String(length=8), nullable=False),
    sa.Column('depth', sa.Integer(), nullable=False),
    sa.Column('state', sa.String(length=16), nullable=False),
    sa.Column('http_status', sa.Integer(), nullable=True),
    sa.Column('error', sa.Text(), nullable=True),
    sa.Column('detail', sa.JSON(), nullable=False),
    sa.Column('done_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_crawl_urls_run_id_runs'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_crawl_urls')),
    sa.UniqueConstraint('run_id', 'url_key', name=op.f('uq_crawl_urls_run_id_url_key'))
    )
    with op.batch_alter_table('crawl_urls', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_crawl_urls_run_id'), ['run_id'], unique=False)

    op.create_table('matches',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('work_id', sa.Integer(), nullable=False),
    sa.Column('page_url', sa.Text(), nullable=False),
    sa.Column('page_url_key', sa.String(length=64), nullable=False),
    sa.Column('media_url', sa.Text(), nullable=False),
    sa.Column('media_url_key', sa.String(length=64), nullable=False),
    sa.Column('domain', sa.String(length=255), nullable=False),
    sa.Column('media_sha256', sa.String(length=71), nullable=True),
    sa.Column('score', sa.Float(), nullable=False),
    sa.Column('offset_s', sa.Float(), nullable=True),
    sa.Column('region', sa.JSON(), nullable=True),
    sa.Column('method', sa.String(length=64), nullable=True),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('first_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen', sa.DateTime(timezone=True), nullable=False),
    sa.Column('first_run_id', sa.Integer(), nullable=True),
    sa.Column('last_run_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['first_run_id'], ['runs.id'], name=op.f('fk_matches_first_run_id_runs')),
    sa.ForeignKeyConstraint(['last_run_id'], ['runs.id'], name=op.f('fk_matches_last_run_id_runs')),
    sa.ForeignKeyConstraint(['work_id'], ['works.id'], name=op.f('fk_matches_work_id_works')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_matches')),
    sa.UniqueConstraint('work_id', 'page_url_key', 'media_url_key', name=op.f('uq_matches_work_id_page_url_key_media_url_key'))
    )
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_matches_domain'), ['domain'], unique=False)
        batch_op.create_index('ix_matches_status_work', ['status', 'work_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_matches_work_id'), ['work_id'], unique=False)

    op.create_table('signals',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('url_key', sa.String(length=64), nullable=False),
    sa.Column('url', sa.Text(), nullable=False),
    sa.Column('scope', sa.String(length=8), nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_signals_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_signals')),
    sa.UniqueConstraint('run_id', 'url_key', name=op.f('uq_signals_run_id_url_key'))
    )
    with op.batch_alter_table('signals', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_signals_run_id'), ['run_id'], unique=False)

    op.create_table('captures',
    sa.Column('id', sa.String(length=36), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.Column('run_id', sa.Integer(), nullable=True),
    sa.Column('warc_sha256', sa.String(length=71), nullable=False),
    sa.Column('warc_size', sa.BigInteger(), nullable=False),
    sa.Column('screenshot_sha256', sa.String(length=71), nullable=True),
    sa.Column('page_url', sa.Text(), nullable=False),
    sa.Column('media_url', sa.Text(), nullable=False),
    sa.Column('started_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('finished_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('complete', sa.Boolean(), nullable=False),
    sa.Column('flags', sa.JSON(), nullable=False),
    sa.Column('custody', sa.JSON(), nullable=False),
    sa.Column('ledger_seq', sa.BigInteger(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['match_id'], ['matches.id'], name=op.f('fk_captures_match_id_matches')),
    sa.ForeignKeyConstraint(['run_id'], ['runs.id'], name=op.f('fk_captures_run_id_runs')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_captures')),
    sa.UniqueConstraint('match_id', 'run_id', name=op.f('uq_captures_match_id_run_id'))
    )
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_captures_match_id'), ['match_id'], unique=False)

    op.create_table('status_changes',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('match_id', sa.Integer(), nullable=False),
    sa.Column('old_status', sa.String(length=16), nullable=False),
    sa.Column('new_status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('by', sa.String(length=200), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['match_id'], ['matches.id'], name=op.f('fk_status_changes_match_id_matches')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_status_changes'))
    )
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_status_changes_match_id'), ['match_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('status_changes', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_status_changes_match_id'))

    op.drop_table('status_changes')
    with op.batch_alter_table('captures', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_captures_match_id'))

    op.drop_table('captures')
    with op.batch_alter_table('signals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_signals_run_id'))

    op.drop_table('signals')
    with op.batch_alter_table('matches', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_matches_work_id'))
        batch_op.drop_index('ix_matches_status_work')
        batch_op.drop_index(batch_op.f('ix_matches_domain'))

    op.drop_table('matches')
    with op.batch_alter_table('crawl_urls', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_crawl_urls_run_id'))

    op.drop_table('crawl_urls')
    with op.batch_alter_table('work_shares', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_work_shares_work_id'))

    op.drop_table('work_shares')
    with op.batch_alter_table('runs', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_runs_watch_id'))
        batch_op.drop_index(batch_op.f('ix_runs_state'))

    op.drop_table('runs')
    with op.batch_alter_table('licences', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_licences_work_id'))
        batch_op.drop_index(batch_op.f('ix_licences_domain'))

    op.drop_table('licences')
    with op.batch_alter_table('fingerprints', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_fingerprints_work_id'))

    op.drop_table('fingerprints')
    with op.batch_alter_table('works', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_works_sha256'))
        batch_op.drop_index(batch_op.f('ix_works_rightsholder_id'))

    op.drop_table('works')
    op.drop_table('watches')
    op.drop_table('account_rightsholders')
    op.drop_table('rightsholders')
    op.drop_table('media_urls')
    op.drop_table('media_objects')
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_ledger_entries_subject'))

    op.drop_table('ledger_entries')
    op.drop_table('leases')
    op.drop_table('checkpoints')
    with op.batch_alter_table('catalogue_versions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_catalogue_versions_work_id'))

    op.drop_table('catalogue_versions')
    op.drop_table('accounts')
