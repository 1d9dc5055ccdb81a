"""After the council (issue 16): evaluation rounds and the products on
them, recognition and revocation decisions with their items, certificates;
council sessions and promotion listings point at their round and
certificate.

Revision ID: 0017
Revises: 0016
"""
from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision: str = '0017'
down_revision: Union[str, Sequence[str], None] = '0016'
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


CYCLE_ONCE_A_YEAR = ("status != 'cancelled' AND product_id IS NOT NULL "
                     "AND process_id = 'ocop_product_cycle'")
BEFORE = "status != 'cancelled' AND product_id IS NOT NULL"  # as 0004


def _once_a_year(where: str) -> None:
    """The one-cycle-a-year index, over `where` (0004 made it over every process)."""
    op.drop_index("uq_process_instance_product_year", "process_instance")
    op.create_index("uq_process_instance_product_year", "process_instance", ["product_id", "year"],
                    unique=True, sqlite_where=sa.text(where), postgresql_where=sa.text(where))


def upgrade() -> None:
    """Upgrade schema."""
    _once_a_year(CYCLE_ONCE_A_YEAR)
    op.create_table('evaluation_round',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('level', sa.String(length=16), nullable=False),
    sa.Column('province_id', sa.Integer(), nullable=True),
    sa.Column('year', sa.Integer(), nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('proposals_by', sa.Date(), nullable=False),
    sa.Column('decide_by', sa.Date(), nullable=False),
    sa.Column('extra', sa.Boolean(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('note', sa.Text(), nullable=False),
    sa.Column('created_by', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by'], ['user_account.id'], name=op.f('fk_evaluation_round_created_by_user_account')),
    sa.ForeignKeyConstraint(['province_id'], ['jurisdiction.id'], name=op.f('fk_evaluation_round_province_id_jurisdiction')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_evaluation_round')),
    sa.UniqueConstraint('level', 'province_id', 'year', 'number', name=op.f('uq_evaluation_round_level'))
    )
    with op.batch_alter_table('evaluation_round', schema=None) as batch_op:
        batch_op.create_index('ix_round_level_area_deadline', ['level', 'province_id', 'proposals_by'], unique=False)

    op.create_table('recognition_decision',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('authority', sa.String(length=16), nullable=False),
    sa.Column('area_id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=True),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('signed_on', sa.Date(), nullable=False),
    sa.Column('signer', sa.String(length=200), nullable=False),
    sa.Column('summary', sa.Text(), nullable=False),
    sa.Column('recorded_by', sa.Integer(), nullable=True),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['area_id'], ['jurisdiction.id'], name=op.f('fk_recognition_decision_area_id_jurisdiction')),
    sa.ForeignKeyConstraint(['recorded_by'], ['user_account.id'], name=op.f('fk_recognition_decision_recorded_by_user_account')),
    sa.ForeignKeyConstraint(['round_id'], ['evaluation_round.id'], name=op.f('fk_recognition_decision_round_id_evaluation_round')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_recognition_decision')),
    sa.UniqueConstraint('area_id', 'number', name=op.f('uq_recognition_decision_area_id'))
    )
    with op.batch_alter_table('recognition_decision', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recognition_decision_area_id'), ['area_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_recognition_decision_round_id'), ['round_id'], unique=False)

    op.create_table('certificate',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('number', sa.String(length=64), nullable=False),
    sa.Column('verify_code', sa.String(length=32), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('producer_id', sa.Integer(), nullable=False),
    sa.Column('province_id', sa.Integer(), nullable=False),
    sa.Column('commune_id', sa.Integer(), nullable=False),
    sa.Column('group_code', sa.String(length=8), nullable=False),
    sa.Column('producer_kind', sa.String(length=32), nullable=False),
    sa.Column('stars', sa.Integer(), nullable=False),
    sa.Column('kind', sa.String(length=16), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('issued_on', sa.Date(), nullable=False),
    sa.Column('valid_until', sa.Date(), nullable=False),
    sa.Column('status', sa.String(length=16), nullable=False),
    sa.Column('status_changed_on', sa.Date(), nullable=True),
    sa.Column('previous_id', sa.Integer(), nullable=True),
    sa.Column('revocation_decision_id', sa.Integer(), nullable=True),
    sa.Column('revocation_ground', sa.String(length=32), nullable=True),
    sa.Column('lifecycle_instance_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['commune_id'], ['jurisdiction.id'], name=op.f('fk_certificate_commune_id_jurisdiction')),
    sa.ForeignKeyConstraint(['decision_id'], ['recognition_decision.id'], name=op.f('fk_certificate_decision_id_recognition_decision')),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_certificate_instance_id_process_instance')),
    sa.ForeignKeyConstraint(['lifecycle_instance_id'], ['process_instance.id'], name=op.f('fk_certificate_lifecycle_instance_id_process_instance')),
    sa.ForeignKeyConstraint(['previous_id'], ['certificate.id'], name=op.f('fk_certificate_previous_id_certificate')),
    sa.ForeignKeyConstraint(['producer_id'], ['producer.id'], name=op.f('fk_certificate_producer_id_producer')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_certificate_product_id_product')),
    sa.ForeignKeyConstraint(['province_id'], ['jurisdiction.id'], name=op.f('fk_certificate_province_id_jurisdiction')),
    sa.ForeignKeyConstraint(['revocation_decision_id'], ['recognition_decision.id'], name=op.f('fk_certificate_revocation_decision_id_recognition_decision')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_certificate')),
    sa.UniqueConstraint('instance_id', name=op.f('uq_certificate_instance_id')),
    sa.UniqueConstraint('number', name=op.f('uq_certificate_number')),
    sa.UniqueConstraint('verify_code', name=op.f('uq_certificate_verify_code'))
    )
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_certificate_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificate_producer_id'), ['producer_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_certificate_product_id'), ['product_id'], unique=False)
        batch_op.create_index('ix_certificate_province_status', ['province_id', 'status'], unique=False)
        batch_op.create_index('ix_certificate_status_valid_until', ['status', 'valid_until'], unique=False)

    op.create_table('round_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('round_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=False),
    sa.Column('product_id', sa.Integer(), nullable=True),
    sa.Column('joined_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('left_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=True),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_round_entry_instance_id_process_instance')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_round_entry_product_id_product')),
    sa.ForeignKeyConstraint(['round_id'], ['evaluation_round.id'], name=op.f('fk_round_entry_round_id_evaluation_round')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_round_entry')),
    sa.UniqueConstraint('round_id', 'instance_id', name=op.f('uq_round_entry_round_id'))
    )
    with op.batch_alter_table('round_entry', schema=None) as batch_op:
        batch_op.create_index('ix_round_entry_instance', ['instance_id', 'left_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_round_entry_product_id'), ['product_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_round_entry_round_id'), ['round_id'], unique=False)

    op.create_table('decision_item',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('decision_id', sa.Integer(), nullable=False),
    sa.Column('instance_id', sa.Integer(), nullable=True),
    sa.Column('product_id', sa.Integer(), nullable=False),
    sa.Column('stars', sa.Integer(), nullable=True),
    sa.Column('outcome', sa.String(length=32), nullable=False),
    sa.Column('certificate_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['certificate_id'], ['certificate.id'], name=op.f('fk_decision_item_certificate_id_certificate')),
    sa.ForeignKeyConstraint(['decision_id'], ['recognition_decision.id'], name=op.f('fk_decision_item_decision_id_recognition_decision')),
    sa.ForeignKeyConstraint(['instance_id'], ['process_instance.id'], name=op.f('fk_decision_item_instance_id_process_instance')),
    sa.ForeignKeyConstraint(['product_id'], ['product.id'], name=op.f('fk_decision_item_product_id_product')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_decision_item')),
    sa.UniqueConstraint('decision_id', 'instance_id', name=op.f('uq_decision_item_decision_id'))
    )
    with op.batch_alter_table('decision_item', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_decision_item_decision_id'), ['decision_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_item_instance_id'), ['instance_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_decision_item_product_id'), ['product_id'], unique=False)

    with op.batch_alter_table('council_session', schema=None) as batch_op:
        batch_op.add_column(sa.Column('round_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_council_session_round_id'), ['round_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_council_session_round_id_evaluation_round'), 'evaluation_round', ['round_id'], ['id'])

    with op.batch_alter_table('promotion_listing', schema=None) as batch_op:
        batch_op.add_column(sa.Column('certificate_id', sa.Integer(), nullable=True))
        batch_op.create_index(batch_op.f('ix_promotion_listing_certificate_id'), ['certificate_id'], unique=False)
        batch_op.create_foreign_key(batch_op.f('fk_promotion_listing_certificate_id_certificate'), 'certificate', ['certificate_id'], ['id'])



def downgrade() -> None:
    """Downgrade schema."""
    _once_a_year(BEFORE)
    with op.batch_alter_table('promotion_listing', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_promotion_listing_certificate_id_certificate'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_promotion_listing_certificate_id'))
        batch_op.drop_column('certificate_id')

    with op.batch_alter_table('council_session', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_council_session_round_id_evaluation_round'), type_='foreignkey')
        batch_op.drop_index(batch_op.f('ix_council_session_round_id'))
        batch_op.drop_column('round_id')

    with op.batch_alter_table('decision_item', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_decision_item_product_id'))
        batch_op.drop_index(batch_op.f('ix_decision_item_instance_id'))
        batch_op.drop_index(batch_op.f('ix_decision_item_decision_id'))

    op.drop_table('decision_item')
    with op.batch_alter_table('round_entry', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_round_entry_round_id'))
        batch_op.drop_index(batch_op.f('ix_round_entry_product_id'))
        batch_op.drop_index('ix_round_entry_instance')

    op.drop_table('round_entry')
    with op.batch_alter_table('certificate', schema=None) as batch_op:
        batch_op.drop_index('ix_certificate_status_valid_until')
        batch_op.drop_index('ix_certificate_province_status')
        batch_op.drop_index(batch_op.f('ix_certificate_product_id'))
        batch_op.drop_index(batch_op.f('ix_certificate_producer_id'))
        batch_op.drop_index(batch_op.f('ix_certificate_decision_id'))

    op.drop_table('certificate')
    with op.batch_alter_table('recognition_decision', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recognition_decision_round_id'))
        batch_op.drop_index(batch_op.f('ix_recognition_decision_area_id'))

    op.drop_table('recognition_decision')
    with op.batch_alter_table('evaluation_round', schema=None) as batch_op:
        batch_op.drop_index('ix_round_level_area_deadline')

    op.drop_table('evaluation_round')
